using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Data;

/// <summary>Reads and writes the key-value (class name) annotation of key-typed columns.</summary>
internal static class KeyValues
{
    /// <summary>ML.NET's annotation kind for the values of a key column.</summary>
    public const string Kind = "KeyValues";

    public static VBuffer<ReadOnlyMemory<char>> FromNames(IReadOnlyList<string> names) =>
        new(names.Count, names.Select(n => n.AsMemory()).ToArray());

    /// <summary>The class names of a key column: its key-value annotation, or "0".."K-1" when it has none.</summary>
    public static string[] NamesOf(DataViewSchema.Column column, int keyCount)
    {
        if (column.Annotations.Schema.GetColumnOrNull(KeyValues.Kind) is { } annotation
            && annotation.Type is VectorDataViewType { ItemType: TextDataViewType } vector && vector.Size == keyCount)
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            column.Annotations.GetValue(KeyValues.Kind, ref values);
            return values.DenseValues().Select(v => v.ToString()).ToArray();
        }
        return Enumerable.Range(0, keyCount).Select(i => i.ToString()).ToArray();
    }

    /// <summary>Annotations that give a key column of <paramref name="names"/>.Count values those names.</summary>
    public static DataViewSchema.Annotations Annotations(IReadOnlyList<string> names)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        var values = FromNames(names);
        builder.Add(KeyValues.Kind, new VectorDataViewType(TextDataViewType.Instance, names.Count),
            (ref VBuffer<ReadOnlyMemory<char>> dst) => values.CopyTo(ref dst));
        return builder.ToAnnotations();
    }
}
