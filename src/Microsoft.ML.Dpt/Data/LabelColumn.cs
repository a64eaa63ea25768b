using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Data;

/// <summary>Validates and reads a key-typed label column, where a missing key (0) marks an unlabeled row.</summary>
internal sealed class LabelColumn
{
    private LabelColumn(string name, int classCount, string[] classNames)
    {
        Name = name;
        ClassCount = classCount;
        ClassNames = classNames;
    }

    /// <summary>Column name.</summary>
    public string Name { get; }
    /// <summary>Number of classes (the key type's count).</summary>
    public int ClassCount { get; }
    /// <summary>Class names from the key-value annotation ("0".."K-1" when there is none).</summary>
    public string[] ClassNames { get; }

    /// <summary>Checks that the column exists and is a uint key type of known cardinality of at least 2.</summary>
    public static LabelColumn Bind(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(name), $"Label column '{name}' was not found in the input schema (columns: {string.Join(", ", schema.Select(c => c.Name))}).");
        if (column.Type is not KeyDataViewType key || key.RawType != typeof(uint) || key.Count < 2 || key.Count > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(name), $"Label column '{name}' has type {column.Type}; expected a key type over UInt32 with at least 2 values (use mlContext.Transforms.Conversion.MapValueToKey). A missing key marks an unlabeled row.");
        int count = (int)key.Count;
        return new LabelColumn(name, count, KeyValues.NamesOf(column, count));
    }

    /// <summary>Reads all labels as class indices, with -1 for a missing key.</summary>
    public int[] ReadAll(IDataView data)
    {
        var labels = new List<int>();
        using var cursor = data.GetRowCursor(new[] { data.Schema[Name] });
        var get = cursor.GetGetter<uint>(data.Schema[Name]);
        uint value = 0;
        while (cursor.MoveNext())
        {
            get(ref value);
            labels.Add((int)value - 1);
        }
        return labels.ToArray();
    }
}
