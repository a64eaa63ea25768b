using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// The standard semi-supervised protocol: keep <c>k</c> labels per class, chosen at random (stratified, seeded),
/// and mark every other row unlabeled (missing key value). The images stay; only labels are hidden.
/// </summary>
public static class FewLabelSplit
{
    /// <summary>Indices of the rows whose labels are kept: <paramref name="labelsPerClass"/> per class, in row order.</summary>
    /// <exception cref="ArgumentException">A class has fewer labeled rows than requested.</exception>
    public static int[] ChooseLabeledRows(IReadOnlyList<int> labels, int classCount, int labelsPerClass, int seed)
    {
        if (labelsPerClass < 1) throw new ArgumentOutOfRangeException(nameof(labelsPerClass), $"labelsPerClass must be at least 1; got {labelsPerClass}.");
        var random = new Random(seed);
        var kept = new List<int>();
        for (int c = 0; c < classCount; c++)
        {
            var rows = Enumerable.Range(0, labels.Count).Where(i => labels[i] == c).ToArray();
            if (rows.Length < labelsPerClass)
                throw new ArgumentException($"Class {c} has {rows.Length} labeled rows; {labelsPerClass} per class were asked for.");
            random.Shuffle(rows);
            kept.AddRange(rows.Take(labelsPerClass));
        }
        kept.Sort();
        return kept.ToArray();
    }

    /// <summary>The data set with all but <paramref name="labelsPerClass"/> labels per class removed.</summary>
    public static ImageDataset Apply(ImageDataset data, int labelsPerClass, int seed)
    {
        var kept = ChooseLabeledRows(data.Labels, data.ClassNames.Count, labelsPerClass, seed);
        var labels = Enumerable.Repeat(-1, data.Count).ToArray();
        foreach (var i in kept) labels[i] = data.Labels[i];
        return new ImageDataset(data.Pixels, labels, data.Shape, data.ClassNames);
    }

    /// <summary>
    /// A view of <paramref name="data"/> in which the key column <paramref name="labelColumnName"/> keeps
    /// <paramref name="labelsPerClass"/> values per class and is missing elsewhere. Other columns are untouched.
    /// </summary>
    public static IDataView Apply(IDataView data, int labelsPerClass, int seed, string labelColumnName = DefaultColumnNames.Label)
    {
        var label = LabelColumn.Bind(data.Schema, labelColumnName);
        var kept = ChooseLabeledRows(label.ReadAll(data), label.ClassCount, labelsPerClass, seed);
        return new LabelMaskingDataView(data, data.Schema[labelColumnName], new HashSet<long>(kept.Select(i => (long)i)));
    }

    /// <summary>Passes rows through, replacing the label with a missing key outside the kept row positions.</summary>
    private sealed class LabelMaskingDataView : IDataView
    {
        private readonly IDataView _source;
        private readonly DataViewSchema.Column _label;
        private readonly HashSet<long> _keptPositions;

        public LabelMaskingDataView(IDataView source, DataViewSchema.Column label, HashSet<long> keptPositions)
        {
            _source = source;
            _label = label;
            _keptPositions = keptPositions;
        }

        public bool CanShuffle => false;   // Row positions identify the kept labels.
        public DataViewSchema Schema => _source.Schema;
        public long? GetRowCount() => _source.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            new Cursor(this, _source.GetRowCursor(columnsNeeded));

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded) };

        private sealed class Cursor : DataViewRowCursor
        {
            private readonly LabelMaskingDataView _parent;
            private readonly DataViewRowCursor _input;

            public Cursor(LabelMaskingDataView parent, DataViewRowCursor input)
            {
                _parent = parent;
                _input = input;
            }

            public override DataViewSchema Schema => _parent.Schema;
            public override long Position => _input.Position;
            public override long Batch => _input.Batch;
            public override bool MoveNext() => _input.MoveNext();
            public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
            public override bool IsColumnActive(DataViewSchema.Column column) => _input.IsColumnActive(column);

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                var getter = _input.GetGetter<TValue>(column);
                if (column.Index != _parent._label.Index) return getter;
                var keyGetter = (ValueGetter<uint>)(object)getter;
                ValueGetter<uint> masked = (ref uint value) =>
                {
                    keyGetter(ref value);
                    if (!_parent._keptPositions.Contains(_input.Position)) value = 0;
                };
                return (ValueGetter<TValue>)(object)masked;
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing) _input.Dispose();
                base.Dispose(disposing);
            }
        }
    }
}
