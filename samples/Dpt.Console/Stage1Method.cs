using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// A way to fit stage 1 (and, by the paper's recipe, stage 3 the same way): a semi-supervised algorithm on the whole
/// network, optionally after contrastive pretraining, or a head on the frozen pretrained encoder.
/// </summary>
/// <param name="Key">Command-line name and metrics.json key.</param>
internal sealed record Stage1Method(string Key, string CommandName, SemiSupervisedAlgorithm Algorithm, FewLabelHead Head, bool Pretrained)
{
    public static readonly Stage1Method SupervisedOnly = new("supervisedOnly", "supervised", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.FineTune, false);
    public static readonly Stage1Method FixMatch = new("fixMatch", "fixmatch", SemiSupervisedAlgorithm.FixMatch, FewLabelHead.FineTune, false);
    public static readonly Stage1Method FreeMatch = new("freeMatch", "freematch", SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, false);
    public static readonly Stage1Method ContrastiveHead = new("contrastiveHead", "contrastive-head", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.LogisticRegression, true);
    public static readonly Stage1Method ContrastiveMeans = new("contrastiveMeans", "contrastive-means", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.NearestClassMean, true);
    public static readonly Stage1Method ContrastiveFreeMatch = new("contrastiveFreeMatch", "contrastive-freematch", SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, true);

    /// <summary>The methods <c>--algorithm</c> accepts.</summary>
    public static readonly Stage1Method[] Choices = { FixMatch, FreeMatch, ContrastiveHead, ContrastiveMeans, ContrastiveFreeMatch };

    public override string ToString() => CommandName;
}
