using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Stages.Scoring;

/// <summary>
/// Row-to-row form of a classifier transformer, which <c>PredictionEngine</c> needs: each output row scores its
/// own image on first use and keeps the result while the input row stays at the same position.
/// </summary>
internal sealed class ScoredRowMapper : IRowToRowMapper
{
    private readonly ClassifierOutputs.Binding _binding;

    public ScoredRowMapper(ClassifierOutputs.Binding binding) => _binding = binding;

    public DataViewSchema InputSchema => _binding.InputSchema;
    public DataViewSchema OutputSchema => _binding.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var columns = dependingColumns.ToList();
        var inputs = columns.Where(c => !_binding.IsOutput(c.Index)).Select(c => InputSchema[c.Index]);
        return columns.Any(c => _binding.IsOutput(c.Index)) ? inputs.Concat(_binding.Dependencies()).Distinct() : inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Row(_binding, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class Row : DataViewRow
    {
        private readonly ClassifierOutputs.Binding _binding;
        private readonly DataViewRow _input;
        private readonly HashSet<int> _active;
        private readonly Action<float[], uint[], int>? _read;
        private readonly float[] _pixels;
        private readonly uint[] _label = new uint[1];
        private readonly ClassifierOutputs.Block _block;
        private long _scoredPosition = -1;

        public Row(ClassifierOutputs.Binding binding, DataViewRow input, HashSet<int> active)
        {
            _binding = binding;
            _input = input;
            _active = active;
            bool scoring = active.Any(binding.IsOutput);
            _read = scoring ? binding.CreateInputReader(input) : null;
            _pixels = new float[binding.Image.Shape.Size];
            _block = new ClassifierOutputs.Block(1, binding.Classes);
        }

        public override DataViewSchema Schema => _binding.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        private ClassifierOutputs.Block Current()
        {
            if (_scoredPosition != _input.Position || _input.Position < 0)
            {
                _read!(_pixels, _label, 0);
                _binding.Compute(_pixels, _label, 1, _block);
                _scoredPosition = _input.Position;
            }
            return _block;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_binding.IsOutput(column.Index))
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (_read is null)
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the row was made.");
            return (ValueGetter<TValue>)_binding.OutputGetter(column.Index, Current, () => 0);
        }
    }
}
