using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.SemiSupervised;

/// <summary>
/// FreeMatch (Wang et al., ICLR 2023), following USB's implementation:
/// <list type="bullet">
/// <item>a global threshold τ = EMA of the mean max-probability on weak views (it starts at 1/K and rises as the model learns);</item>
/// <item>per-class thresholds τ_c = τ · p̃_c / max p̃, where p̃ is the EMA of the mean predicted distribution;</item>
/// <item>a self-adaptive fairness term: the negative cross-entropy between the histogram-normalised EMA class
/// distribution and the histogram-normalised mean prediction on confident strong views, weighted by λ_f.</item>
/// </list>
/// All state lives on the device; the masked means replace boolean indexing, which would need a host sync.
/// </summary>
internal sealed class FreeMatchObjective : IUnlabeledObjective
{
    private readonly double _momentum;
    private readonly double _fairnessWeight;
    private readonly long _classes;
    private Tensor _globalThreshold;
    private Tensor _classProbabilities;
    private Tensor _labelHistogram;

    public FreeMatchObjective(int classes, Device device, double momentum = 0.999, double fairnessWeight = 0.001)
    {
        _classes = classes;
        _momentum = momentum;
        _fairnessWeight = fairnessWeight;
        _classProbabilities = (ones(classes, device: device) / classes).DetachFromDisposeScope();
        _labelHistogram = (ones(classes, device: device) / classes).DetachFromDisposeScope();
        _globalThreshold = (ones(1, device: device) / classes).DetachFromDisposeScope();
    }

    public Tensor? LastMaskRate { get; private set; }

    public IReadOnlyList<Tensor> State => new[] { _globalThreshold, _classProbabilities, _labelHistogram };

    public Tensor Loss(Tensor weakLogits, Tensor strongLogits)
    {
        var probabilities = weakLogits.softmax(-1);
        var (confidence, pseudoLabel) = probabilities.max(-1);
        UpdateState(probabilities, confidence, pseudoLabel);

        var classScale = _classProbabilities / _classProbabilities.max();
        var mask = (confidence >= _globalThreshold * classScale.index_select(0, pseudoLabel)).to(strongLogits.dtype);
        LastMaskRate = mask.mean().detach();

        var perRow = nn.functional.cross_entropy(strongLogits, pseudoLabel, reduction: nn.Reduction.None);
        var consistency = (perRow * mask).mean();
        return _fairnessWeight == 0 ? consistency : consistency + _fairnessWeight * Fairness(mask, strongLogits);
    }

    private void UpdateState(Tensor probabilities, Tensor confidence, Tensor pseudoLabel)
    {
        using var _ = no_grad();
        double m = _momentum;
        var histogram = nn.functional.one_hot(pseudoLabel, _classes).to(probabilities.dtype).mean(new long[] { 0 });
        Replace(ref _globalThreshold, _globalThreshold * m + (1 - m) * confidence.mean());
        Replace(ref _classProbabilities, _classProbabilities * m + (1 - m) * probabilities.mean(new long[] { 0 }));
        Replace(ref _labelHistogram, _labelHistogram * m + (1 - m) * histogram);
    }

    /// <summary>USB's entropy_loss, written with mask weights instead of boolean indexing.</summary>
    private Tensor Fairness(Tensor mask, Tensor strongLogits)
    {
        var strongProbabilities = strongLogits.softmax(-1);
        var weights = mask.unsqueeze(1);
        var count = mask.sum();
        var strongLabel = strongProbabilities.argmax(-1);
        var histogram = (nn.functional.one_hot(strongLabel, _classes).to(mask.dtype) * weights).sum(dim: 0);
        histogram = histogram / count.clamp_min(1);
        var meanProbability = (strongProbabilities * weights).sum(dim: 0) / count.clamp_min(1);

        var modelScaled = Normalise(_classProbabilities * SafeReciprocal(_labelHistogram));
        var batchScaled = Normalise(meanProbability * SafeReciprocal(histogram).detach());
        var loss = (modelScaled * (batchScaled + 1e-12).log()).sum();
        return loss * (count > 0).to(loss.dtype);   // USB skips the term when no row is confident
    }

    private static Tensor SafeReciprocal(Tensor x) => where(x > 0, 1 / x.clamp_min(1e-12), zeros_like(x));

    private static Tensor Normalise(Tensor x) => x / x.sum().clamp_min(1e-12);

    private static void Replace(ref Tensor state, Tensor next)
    {
        var old = state;
        state = next.DetachFromDisposeScope();
        old.Dispose();
    }
}
