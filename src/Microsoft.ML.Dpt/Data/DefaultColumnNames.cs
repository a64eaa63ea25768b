namespace Microsoft.ML.Dpt.Data;

/// <summary>Column names the DPT components use unless told otherwise.</summary>
public static class DefaultColumnNames
{
    /// <summary>The image column: a float vector of C*H*W values in [0, 1], or an <c>MLImage</c>.</summary>
    public const string Image = "Image";
    /// <summary>The label column: a key type; a missing key marks an unlabeled row.</summary>
    public const string Label = "Label";
    /// <summary>Stage 1's pseudo-label (key type with the label's key values).</summary>
    public const string PseudoLabel = "PseudoLabel";
    /// <summary>Stage 1's confidence in its pseudo-label (float in [0, 1]).</summary>
    public const string PseudoLabelConfidence = "PseudoLabelConfidence";
    /// <summary>Class probabilities (float vector, one per class), as ML.NET's multiclass trainers name it.</summary>
    public const string Score = "Score";
    /// <summary>Predicted class (key type), as ML.NET's multiclass trainers name it.</summary>
    public const string PredictedLabel = "PredictedLabel";
}
