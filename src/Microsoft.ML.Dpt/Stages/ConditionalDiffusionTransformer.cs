using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Stages.Scoring;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 2's fitted model. On rows it is a no-op (so scoring and <c>PredictionEngine</c> see the input unchanged);
/// its <see cref="Transform"/> output carries <see cref="SyntheticImages"/> for the next estimator's <c>Fit</c>.
/// The generator is reachable through <see cref="Generator"/> and is saved on its own
/// (<see cref="ConditionalGenerator.Save"/>): the diffusion weights are not part of a scoring model.
/// </summary>
public sealed class ConditionalDiffusionTransformer : ITransformer, IDisposable
{
    internal ConditionalDiffusionTransformer(ConditionalGenerator generator, ImageDataset synthetic, string imageColumnName)
    {
        Generator = generator;
        SyntheticImages = synthetic;
        ImageColumnName = imageColumnName;
    }

    /// <summary>The trained generator: <c>Generate(class, count, seed)</c>, PNG grids, save and load.</summary>
    public ConditionalGenerator Generator { get; }

    /// <summary>The images generated during <c>Fit</c>, labeled with their class.</summary>
    public ImageDataset SyntheticImages { get; }

    /// <summary>The image column of the training data.</summary>
    public string ImageColumnName { get; }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

    /// <summary>Returns the input rows unchanged, with <see cref="SyntheticImages"/> attached (<see cref="ISyntheticImageSource"/>).</summary>
    public IDataView Transform(IDataView input) => new SyntheticImagesDataView(input, SyntheticImages);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new IdentityRowMapper(inputSchema);

    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "ConditionalDiffusionTransformer cannot be written by mlContext.Model.Save: ML.NET keeps its model-saving contexts internal. " +
        "Save the generator with transformer.Generator.Save(path) and load it with ConditionalGenerator.Load(path).");

    /// <inheritdoc/>
    public void Dispose() => Generator.Dispose();
}
