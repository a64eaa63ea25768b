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
    public int[] ReadAll(IDataView data) => Read(data, valueColumn: null).Labels;

    /// <summary>
    /// Reads all labels and, in the same cursor pass, the scalar Single column <paramref name="valueColumn"/>, so that
    /// a lazily scored input (a transformer's output) is scored once.
    /// </summary>
    public (int[] Labels, float[] Values) ReadAllWith(IDataView data, DataViewSchema.Column valueColumn) => Read(data, valueColumn);

    private (int[] Labels, float[] Values) Read(IDataView data, DataViewSchema.Column? valueColumn)
    {
        var labels = new List<int>();
        var values = new List<float>();
        var labelColumn = data.Schema[Name];
        using var cursor = data.GetRowCursor(valueColumn is { } column ? new[] { labelColumn, column } : new[] { labelColumn });
        var getLabel = cursor.GetGetter<uint>(labelColumn);
        var getValue = valueColumn is { } c ? cursor.GetGetter<float>(c) : null;
        uint key = 0;
        float value = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref key);
            labels.Add((int)key - 1);
            if (getValue is null) continue;
            getValue(ref value);
            values.Add(value);
        }
        return (labels.ToArray(), values.ToArray());
    }
}
