using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Stages.Scoring;

/// <summary>
/// Builds <see cref="SchemaShape.Column"/> values for <c>GetOutputSchema</c>. ML.NET 5.0.1 keeps that struct's
/// constructor internal (its own estimators are friends of the assembly), so this one helper calls it by
/// reflection; the package pins ML.NET 5.0.1 and a unit test checks the call.
/// </summary>
internal static class SchemaShapeColumns
{
    private static readonly ConstructorInfo Constructor =
        typeof(SchemaShape.Column).GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public, null,
            new[] { typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape) }, null)
        ?? throw new MissingMethodException("This version of ML.NET has no SchemaShape.Column(name, kind, itemType, isKey, annotations) constructor; Microsoft.ML.Dpt needs Microsoft.ML 5.0.1.");

    public static SchemaShape.Column Scalar(string name, DataViewType type, bool isKey = false, SchemaShape? annotations = null) =>
        Create(name, SchemaShape.Column.VectorKind.Scalar, type, isKey, annotations);

    public static SchemaShape.Column Vector(string name, DataViewType itemType, SchemaShape? annotations = null) =>
        Create(name, SchemaShape.Column.VectorKind.Vector, itemType, false, annotations);

    /// <summary>The annotation shape of a key column with text key values.</summary>
    public static SchemaShape KeyValuesAnnotation() =>
        new(new[] { Create(Data.KeyValues.Kind, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false, null) });

    /// <summary>
    /// The shape of a concrete schema (what ML.NET's internal <c>SchemaShape.Create</c> does), for checking an
    /// estimator against real data.
    /// </summary>
    public static SchemaShape FromSchema(DataViewSchema schema) => new(schema.Where(c => !c.IsHidden).Select(c =>
    {
        var annotations = new SchemaShape(c.Annotations.Schema.Select(a => Create(a.Name, KindOf(a.Type), ItemOf(a.Type), a.Type is KeyDataViewType, null)));
        bool isKey = (c.Type is VectorDataViewType v ? v.ItemType : c.Type) is KeyDataViewType;
        return Create(c.Name, KindOf(c.Type), ItemOf(c.Type), isKey, annotations);
    }));

    private static SchemaShape.Column.VectorKind KindOf(DataViewType type) => type switch
    {
        VectorDataViewType { IsKnownSize: true } => SchemaShape.Column.VectorKind.Vector,
        VectorDataViewType => SchemaShape.Column.VectorKind.VariableVector,
        _ => SchemaShape.Column.VectorKind.Scalar,
    };

    /// <summary>The item type as SchemaShape wants it: for key types, the underlying integer type (flagged by isKey).</summary>
    private static DataViewType ItemOf(DataViewType type)
    {
        var item = type is VectorDataViewType vector ? vector.ItemType : type;
        return item is KeyDataViewType key ? ColumnTypeOfRaw(key.RawType) : item;
    }

    private static DataViewType ColumnTypeOfRaw(Type raw) =>
        raw == typeof(uint) ? NumberDataViewType.UInt32 : raw == typeof(ulong) ? NumberDataViewType.UInt64 :
        raw == typeof(ushort) ? NumberDataViewType.UInt16 : NumberDataViewType.Byte;

    /// <summary><paramref name="input"/> with <paramref name="added"/> appended; an added column replaces one of the same name.</summary>
    public static SchemaShape Append(SchemaShape input, IEnumerable<SchemaShape.Column> added)
    {
        var columns = input.ToDictionary(c => c.Name);
        foreach (var column in added) columns[column.Name] = column;
        return new SchemaShape(columns.Values);
    }

    private static SchemaShape.Column Create(string name, SchemaShape.Column.VectorKind kind, DataViewType type, bool isKey, SchemaShape? annotations) =>
        (SchemaShape.Column)Constructor.Invoke(new object?[] { name, kind, type, isKey, annotations ?? new SchemaShape(Array.Empty<SchemaShape.Column>()) });
}
