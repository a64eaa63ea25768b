using Microsoft.ML.Dpt.Data;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>A data view that carries generated images along with its own rows, for the next estimator's <c>Fit</c>.</summary>
public interface ISyntheticImageSource
{
    /// <summary>The generated images with their classes (every one of them synthetic).</summary>
    ImageDataset SyntheticImages { get; }
}

/// <summary>
/// What <see cref="ConditionalDiffusionTransformer.Transform"/> returns: exactly the input's rows and schema,
/// plus the generated images as a property. Scoring sees the input unchanged; a stage-3 trainer that follows in
/// the chain finds the generated images through <see cref="ISyntheticImageSource"/>.
/// </summary>
internal sealed class SyntheticImagesDataView : IDataView, ISyntheticImageSource
{
    private readonly IDataView _rows;

    public SyntheticImagesDataView(IDataView rows, ImageDataset synthetic)
    {
        _rows = rows;
        SyntheticImages = synthetic;
    }

    public ImageDataset SyntheticImages { get; }

    /// <summary>The classifier that scored the rows (stage 1's, when stage 2 directly follows it in a chain), or null.</summary>
    public Models.TrainedClassifier? RowClassifier => (_rows as Scoring.ScoredDataView)?.Classifier;

    public bool CanShuffle => _rows.CanShuffle;
    public DataViewSchema Schema => _rows.Schema;
    public long? GetRowCount() => _rows.GetRowCount();
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => _rows.GetRowCursor(columnsNeeded, rand);
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => _rows.GetRowCursorSet(columnsNeeded, n, rand);
}
