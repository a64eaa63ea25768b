using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages.Scoring;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 3's fitted model: adds <c>Score</c> (class probabilities) and <c>PredictedLabel</c> (key, with the label's
/// key values) to every row, as ML.NET's multiclass trainers do, so <c>MulticlassClassification.Evaluate</c> and
/// <c>MapKeyToValue</c> work on its output.
/// </summary>
public sealed class DptClassifierTransformer : ImageClassifierTransformer
{
    private const string Kind = "Microsoft.ML.Dpt.DptClassifier";

    internal DptClassifierTransformer(TrainedClassifier classifier, string imageColumnName, int mlImageChannels, string scoreColumnName, string predictedLabelColumnName,
        GeneratedImageCounts? generatedImages)
        : base(new ClassifierOutputs(classifier, imageColumnName, mlImageChannels, scoreColumnName, predictedLabelColumnName, null, null))
    {
        GeneratedImages = generatedImages;
    }

    /// <summary>
    /// How many generated images of each class the trainer received, kept after its filter and trained on; null when
    /// its input carried none (it then trained on the real rows alone). Saved with the model.
    /// </summary>
    public GeneratedImageCounts? GeneratedImages { get; }

    /// <summary>Output column of the class probabilities.</summary>
    public string ScoreColumnName => Outputs.ScoreColumnName;
    /// <summary>Output column of the predicted class.</summary>
    public string PredictedLabelColumnName => Outputs.KeyColumnName;

    /// <inheritdoc/>
    public override void Save(string path) => SaveWithClassifier(path, Kind, new JsonObject
    {
        ["scoreColumnName"] = ScoreColumnName, ["predictedLabelColumnName"] = PredictedLabelColumnName,
        [GeneratedImagesEntry] = GeneratedImages?.ToJson(),
    });

    private const string GeneratedImagesEntry = "generatedImages";

    /// <summary>Loads a transformer written by <see cref="Save"/>; predictions are identical on the same device.</summary>
    public static DptClassifierTransformer Load(string path, DptDevice device = DptDevice.Auto)
    {
        var (file, classifier) = OpenWithClassifier(path, Kind, device);
        using var _ = file;
        // Files written before the counts were kept have no entry; one that is there must read back whole.
        var countsNode = file.Manifest[GeneratedImagesEntry];
        var counts = countsNode is null ? null
            : GeneratedImageCounts.FromJson(countsNode) ?? throw file.Damaged($"manifest value '{GeneratedImagesEntry}' is not three lists of counts");
        return new DptClassifierTransformer(classifier, file.Get<string>("imageColumnName"), file.Get<int>("mlImageChannels"),
            file.Get<string>("scoreColumnName"), file.Get<string>("predictedLabelColumnName"), counts);
    }
}
