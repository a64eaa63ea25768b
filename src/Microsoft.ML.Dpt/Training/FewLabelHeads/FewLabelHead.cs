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

    /// <summary>
    /// Keep the encoder frozen, spread the few labels over a k-nearest-neighbour graph of every image's normalised
    /// features (label propagation, as Iscen et al. 2019 use it for semi-supervised learning), then fit the
    /// <see cref="LogisticRegression"/> head on the labeled images plus every unlabeled one with its propagated class,
    /// weighted by how certain that class is. Uses the unlabeled images where the plain head only centres on them.
    /// </summary>
    LabelPropagation,
}
