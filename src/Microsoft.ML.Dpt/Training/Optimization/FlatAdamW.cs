using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Optimization;

/// <summary>
/// AdamW (Loshchilov and Hutter, 2019) over a flat parameter buffer: decoupled weight decay, bias-corrected
/// moments, the same arithmetic in the same order as TorchSharp's and PyTorch's AdamW, in nine kernels a step.
/// </summary>
internal sealed class FlatAdamW : FlatOptimizer
{
    private readonly double _beta1, _beta2, _epsilon;
    private readonly Tensor _firstMoment, _secondMoment;

    public FlatAdamW(nn.Module module, double learningRate, double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
        : base(module, learningRate, weightDecay)
    {
        _beta1 = beta1;
        _beta2 = beta2;
        _epsilon = epsilon;
        _firstMoment = zeros_like(Flat.Values).DetachFromDisposeScope();
        _secondMoment = zeros_like(Flat.Values).DetachFromDisposeScope();
    }

    protected override IReadOnlyList<Tensor> State => new[] { _firstMoment, _secondMoment };

    protected override void Update(Tensor values, Tensor gradients, long step)
    {
        double biasCorrection1 = 1 - Math.Pow(_beta1, step + 1);
        double biasCorrection2 = 1 - Math.Pow(_beta2, step + 1);
        values.mul_(1 - LearningRate * WeightDecay);
        _firstMoment.mul_(_beta1).add_(gradients, alpha: 1 - _beta1);
        _secondMoment.mul_(_beta2).addcmul_(gradients, gradients, value: 1 - _beta2);
        var denominator = (_secondMoment.sqrt() / Math.Sqrt(biasCorrection2)).add_(_epsilon);
        values.addcdiv_(_firstMoment, denominator, value: -LearningRate / biasCorrection1);
    }
}
