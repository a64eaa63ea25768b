using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Stages.Scoring;

/// <summary>
/// The lazy result of a classifier transformer's <c>Transform</c>: the input rows, unchanged and in order, with
/// the classifier's columns appended. A cursor scores its rows in blocks: a second "read-ahead" cursor over the
/// same input reads the next block's images so the network sees batches, while the main cursor serves the
/// pass-through columns. Both are unshuffled cursors over one view, so they visit the same rows in the same order.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private const int BlockSize = 256;
    private readonly IDataView _input;
    private readonly ClassifierOutputs.Binding _binding;

    public ScoredDataView(IDataView input, ClassifierOutputs.Binding binding)
    {
        _input = input;
        _binding = binding;
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema => _binding.OutputSchema;

    /// <summary>The classifier whose columns this view adds (stage 3 can vet generated images with stage 1's).</summary>
    public Models.TrainedClassifier Classifier => _binding.Classifier;
    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToList();
        var inputColumns = needed.Where(c => !_binding.IsOutput(c.Index)).Select(c => _input.Schema[c.Index]);
        bool scoring = needed.Any(c => _binding.IsOutput(c.Index));
        return new Cursor(this, _input.GetRowCursor(inputColumns),
            scoring ? _input.GetRowCursor(_binding.Dependencies()) : null, needed.Select(c => c.Index).ToHashSet());
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _parent;
        private readonly DataViewRowCursor _main;
        private readonly DataViewRowCursor? _ahead;
        private readonly HashSet<int> _active;
        private readonly Action<float[], uint[], int>? _readAhead;
        private readonly float[] _pixels;
        private readonly uint[] _labels = new uint[BlockSize];
        private readonly ClassifierOutputs.Block _block;
        private int _blockStart = -1, _blockCount;

        public Cursor(ScoredDataView parent, DataViewRowCursor main, DataViewRowCursor? ahead, HashSet<int> active)
        {
            _parent = parent;
            _main = main;
            _ahead = ahead;
            _active = active;
            _readAhead = ahead is null ? null : parent._binding.CreateInputReader(ahead);
            _pixels = new float[ahead is null ? 0 : BlockSize * parent._binding.Image.Shape.Size];
            _block = new ClassifierOutputs.Block(ahead is null ? 0 : BlockSize, parent._binding.Classes);
        }

        public override DataViewSchema Schema => _parent.Schema;
        public override long Position => _main.Position;
        public override long Batch => 0;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (!_main.MoveNext()) return false;
            if (_ahead is not null && _main.Position >= _blockStart + _blockCount) ScoreNextBlock();
            return true;
        }

        private void ScoreNextBlock()
        {
            _blockStart = (int)_main.Position;
            _blockCount = 0;
            while (_blockCount < BlockSize && _ahead!.MoveNext())
                _readAhead!(_pixels, _labels, _blockCount++);
            if (_blockCount == 0)
                throw new InvalidOperationException("The input data view gave a different number of rows to two cursors; a classifier can only score views that are read the same way twice.");
            _parent._binding.Compute(_pixels, _labels, _blockCount, _block);
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_parent._binding.IsOutput(column.Index))
                return _main.GetGetter<TValue>(_main.Schema[column.Index]);
            if (!IsColumnActive(column))
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was made.");
            return (ValueGetter<TValue>)_parent._binding.OutputGetter(column.Index, () => _block, () => (int)(_main.Position - _blockStart));
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
