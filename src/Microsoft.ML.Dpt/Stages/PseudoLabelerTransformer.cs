using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages.Scoring;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 1's fitted model: adds <c>PseudoLabel</c> (key, same key values as the label), <c>PseudoLabelConfidence</c>
/// (float) and <c>Score</c> (class probabilities) to every row.
/// </summary>
/// <remarks>
/// Rows that already have a label keep it as their pseudo-label, with confidence 1, when
/// <see cref="KeepKnownLabels"/> is set and the label column is present; their <c>Score</c> is still the model's
/// prediction. Rows without a label, and all rows when the label column is absent, get the model's argmax.
/// </remarks>
public sealed class PseudoLabelerTransformer : ImageClassifierTransformer
{
    private const string Kind = "Microsoft.ML.Dpt.PseudoLabeler";

    internal PseudoLabelerTransformer(TrainedClassifier classifier, string imageColumnName, int mlImageChannels, string labelColumnName,
        bool keepKnownLabels, string pseudoLabelColumnName, string confidenceColumnName, string scoreColumnName)
        : base(new ClassifierOutputs(classifier, imageColumnName, mlImageChannels, scoreColumnName, pseudoLabelColumnName,
            confidenceColumnName, keepKnownLabels ? labelColumnName : null))
    {
        LabelColumnName = labelColumnName;
    }

    /// <summary>The label column whose known values are kept (when <see cref="KeepKnownLabels"/>).</summary>
    public string LabelColumnName { get; }
    /// <summary>Whether known labels are kept as pseudo-labels.</summary>
    public bool KeepKnownLabels => Outputs.KnownLabelColumnName is not null;
    /// <summary>Output column of the pseudo-label.</summary>
    public string PseudoLabelColumnName => Outputs.KeyColumnName;
    /// <summary>Output column of the confidence.</summary>
    public string ConfidenceColumnName => Outputs.ConfidenceColumnName!;
    /// <summary>Output column of the class probabilities.</summary>
    public string ScoreColumnName => Outputs.ScoreColumnName;

    /// <inheritdoc/>
    public override void Save(string path) => SaveWithClassifier(path, Kind, new JsonObject
    {
        ["labelColumnName"] = LabelColumnName, ["keepKnownLabels"] = KeepKnownLabels, ["pseudoLabelColumnName"] = PseudoLabelColumnName,
        ["confidenceColumnName"] = ConfidenceColumnName, ["scoreColumnName"] = ScoreColumnName,
    });

    /// <summary>Loads a transformer written by <see cref="Save"/>; predictions are identical to the saved one's on the same device.</summary>
    /// <exception cref="InvalidDataException">The file is not a PseudoLabeler model file, is of a newer format, or is damaged.</exception>
    public static PseudoLabelerTransformer Load(string path, DptDevice device = DptDevice.Auto)
    {
        var (file, classifier) = OpenWithClassifier(path, Kind, device);
        using var _ = file;
        return new PseudoLabelerTransformer(classifier, file.Get<string>("imageColumnName"), file.Get<int>("mlImageChannels"),
            file.Get<string>("labelColumnName"), file.Get<bool>("keepKnownLabels"), file.Get<string>("pseudoLabelColumnName"),
            file.Get<string>("confidenceColumnName"), file.Get<string>("scoreColumnName"));
    }
}
