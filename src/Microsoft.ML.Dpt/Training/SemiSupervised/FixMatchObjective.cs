using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.SemiSupervised;

/// <summary>
/// FixMatch: the argmax of the weak view's prediction is a hard pseudo-label when its probability reaches a fixed
/// threshold; the strong view is trained on it with cross-entropy. Rows under the threshold contribute nothing.
/// </summary>
internal sealed class FixMatchObjective : IUnlabeledObjective
{
    private readonly double _threshold;

    public FixMatchObjective(double threshold) => _threshold = threshold;

    public Tensor? LastMaskRate { get; private set; }

    public IReadOnlyList<Tensor> State => Array.Empty<Tensor>();

    public Tensor Loss(Tensor weakLogits, Tensor strongLogits)
    {
        var probabilities = weakLogits.softmax(-1);
        var (confidence, pseudoLabel) = probabilities.max(-1);
        var mask = (confidence >= _threshold).to(strongLogits.dtype);
        LastMaskRate = mask.mean().detach();
        var perRow = nn.functional.cross_entropy(strongLogits, pseudoLabel, reduction: nn.Reduction.None);
        return (perRow * mask).mean();
    }
}
