namespace Microsoft.ML.Dpt.Training.FewLabelHeads;

/// <summary>How a classifier is fitted on the few labels.</summary>
public enum FewLabelHead
{
    /// <summary>
    /// Train the whole network with the semi-supervised algorithm (supervised-only, FixMatch, FreeMatch), starting
    /// from the pretrained encoder when there is one.
    /// </summary>
    FineTune,

    /// <summary>
    /// Keep the encoder frozen and fit an L2-regularised multinomial logistic regression (ML.NET's
    /// <c>LbfgsMaximumEntropy</c>) on its centred, L2-normalised features: DPT's ImageNet recipe.
    /// </summary>
    LogisticRegression,

    /// <summary>Keep the encoder frozen and predict the class whose mean normalised feature is nearest (a baseline).</summary>
    NearestClassMean,
}
