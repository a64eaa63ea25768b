using System.Text.Json.Nodes;
using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Persistence;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages.Scoring;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Shared ML.NET face of a fitted image classifier: appends its columns to every row, lazily and in batches for
/// <see cref="Transform"/>, row by row for <c>PredictionEngine</c>. Rows are never added, dropped or reordered.
/// </summary>
/// <remarks>
/// ML.NET's <c>mlContext.Model.Save</c> cannot store this transformer (ML.NET keeps its save/load contexts
/// internal); use <see cref="Save"/> and the matching <c>Load</c> of the derived class.
/// </remarks>
public abstract class ImageClassifierTransformer : ITransformer, IDisposable
{
    private protected ImageClassifierTransformer(ClassifierOutputs outputs) => Outputs = outputs;

    private protected ClassifierOutputs Outputs { get; }

    /// <summary>The trained network with its image shape and class names.</summary>
    public TrainedClassifier Classifier => Outputs.Classifier;

    /// <summary>The image column this transformer reads.</summary>
    public string ImageColumnName => Outputs.ImageColumnName;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Outputs.Bind(inputSchema).OutputSchema;

    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => new ScoredDataView(input, Outputs.Bind(input.Schema));

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoredRowMapper(Outputs.Bind(inputSchema));

    private const int FormatVersion = 1;
    private const string WeightsEntry = "classifier.bin";

    /// <summary>Saves this transformer to a file that the derived class's <c>Load</c> reads back exactly.</summary>
    public abstract void Save(string path);

    /// <summary>Writes a model file of <paramref name="kind"/>: the column settings in <paramref name="manifest"/>, plus the classifier.</summary>
    private protected void SaveWithClassifier(string path, string kind, JsonObject manifest)
    {
        manifest["imageColumnName"] = ImageColumnName;
        manifest["mlImageChannels"] = Outputs.MLImageChannels;
        ModelFile.Write(path, kind, FormatVersion, manifest, Classifier.WriteTo(manifest, WeightsEntry));
    }

    /// <summary>Opens a file written by <see cref="SaveWithClassifier"/> and rebuilds its classifier on <paramref name="device"/>.</summary>
    private protected static (ModelFile.Reader File, TrainedClassifier Classifier) OpenWithClassifier(string path, string kind, DptDevice device)
    {
        var torchDevice = DeviceSelection.Resolve(device);
        var file = ModelFile.Open(path, kind, FormatVersion);
        try
        {
            return (file, TrainedClassifier.ReadFrom(file, WeightsEntry, torchDevice));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        $"{GetType().Name} cannot be written by mlContext.Model.Save: ML.NET keeps its model-saving contexts internal to its own assemblies. " +
        $"Save it with {GetType().Name}.Save(path) and load it with the matching Load; save the rest of the pipeline with mlContext.Model.Save.");

    /// <inheritdoc/>
    public void Dispose()
    {
        Classifier.Dispose();
        GC.SuppressFinalize(this);
    }
}
