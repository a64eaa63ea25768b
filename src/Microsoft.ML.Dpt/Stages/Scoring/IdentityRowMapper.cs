using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Stages.Scoring;

/// <summary>A row-to-row mapper that changes nothing: what a scoring-time no-op needs for <c>PredictionEngine</c>.</summary>
internal sealed class IdentityRowMapper : IRowToRowMapper
{
    public IdentityRowMapper(DataViewSchema schema) => InputSchema = schema;

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema => InputSchema;
    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns) => dependingColumns;
    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) => input;
}
