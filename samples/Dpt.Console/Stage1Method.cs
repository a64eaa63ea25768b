using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// A way to fit stage 1 (and, by the paper's recipe, stage 3 the same way): a semi-supervised algorithm on the whole
/// network, optionally after contrastive pretraining, or a head on the frozen features of an encoder pretrained here
/// or on ImageNet.
/// </summary>
/// <param name="Key">Command-line name and metrics.json key.</param>
/// <param name="ImageNetEncoder">True: the head reads ML.NET's ImageNet ResNet-18 (ONNX) instead of an encoder trained here.</param>
/// <param name="PropagatedLabels">True: before FreeMatch, label propagation over the pretrained features adds the most
/// certain rows of each class to the labeled set (<c>--propagated-fraction</c>).</param>
/// <param name="PropagateAfterFineTuning">True: after FreeMatch, the labels spread again over the fine-tuned features
/// and the propagation head is fitted there.</param>
internal sealed record Stage1Method(string Key, string CommandName, SemiSupervisedAlgorithm Algorithm, FewLabelHead Head, bool Pretrained,
    bool ImageNetEncoder = false, bool PropagatedLabels = false, bool PropagateAfterFineTuning = false)
{
    public static readonly Stage1Method SupervisedOnly = new("supervisedOnly", "supervised", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.FineTune, false);
    public static readonly Stage1Method FixMatch = new("fixMatch", "fixmatch", SemiSupervisedAlgorithm.FixMatch, FewLabelHead.FineTune, false);
    public static readonly Stage1Method FreeMatch = new("freeMatch", "freematch", SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, false);
    public static readonly Stage1Method ContrastiveHead = new("contrastiveHead", "contrastive-head", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.LogisticRegression, true);
    public static readonly Stage1Method ContrastiveMeans = new("contrastiveMeans", "contrastive-means", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.NearestClassMean, true);
    public static readonly Stage1Method ContrastivePropagation = new("contrastivePropagation", "contrastive-propagation", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.LabelPropagation, true);
    public static readonly Stage1Method ContrastiveFreeMatch = new("contrastiveFreeMatch", "contrastive-freematch", SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, true);
    public static readonly Stage1Method PropagationFreeMatch = new("propagationFreeMatch", "propagation-freematch", SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, true, PropagatedLabels: true);
    public static readonly Stage1Method PropagationFreeMatchPropagation = new("propagationFreeMatchPropagation", "propagation-freematch-propagation",
        SemiSupervisedAlgorithm.FreeMatch, FewLabelHead.FineTune, true, PropagatedLabels: true, PropagateAfterFineTuning: true);
    public static readonly Stage1Method ResNet18Head = new("resNet18Head", "resnet18-head", SemiSupervisedAlgorithm.SupervisedOnly, FewLabelHead.LogisticRegression, false, ImageNetEncoder: true);

    /// <summary>The methods <c>--algorithm</c> accepts.</summary>
    public static readonly Stage1Method[] Choices = { FixMatch, FreeMatch, ContrastiveHead, ContrastiveMeans, ContrastivePropagation, ContrastiveFreeMatch, PropagationFreeMatch, PropagationFreeMatchPropagation, ResNet18Head };

    /// <summary>Whether the method ends in a logistic regression on frozen features, the head that <c>--head-l2</c> regularises (the library's rule).</summary>
    public bool FitsLogisticRegressionHead => new PseudoLabeler.Options { Head = Head, PropagateAfterFineTuning = PropagateAfterFineTuning }.FitsLogisticRegressionHead;

    public override string ToString() => CommandName;
}
