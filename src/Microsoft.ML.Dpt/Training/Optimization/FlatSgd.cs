using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Optimization;

/// <summary>
/// SGD with momentum, optional Nesterov momentum and L2 weight decay (added to the gradient, as PyTorch's SGD and
/// FixMatch do) over a flat parameter buffer; the first step seeds the momentum with the gradient, as PyTorch does.
/// </summary>
internal sealed class FlatSgd : FlatOptimizer
{
    private readonly double _momentum;
    private readonly bool _nesterov;
    private readonly Tensor _velocity;

    public FlatSgd(nn.Module module, double learningRate, double momentum, double weightDecay, bool nesterov)
        : base(module, learningRate, weightDecay)
    {
        if (momentum < 0 || momentum >= 1) throw new ArgumentOutOfRangeException(nameof(momentum), $"Momentum must be in [0, 1); got {momentum}.");
        if (nesterov && momentum == 0) throw new ArgumentException("Nesterov momentum needs a momentum above 0.", nameof(nesterov));
        _momentum = momentum;
        _nesterov = nesterov;
        _velocity = zeros_like(Flat.Values).DetachFromDisposeScope();
    }

    protected override IReadOnlyList<Tensor> State => new[] { _velocity };

    protected override void Update(Tensor values, Tensor gradients, long step)
    {
        var direction = WeightDecay == 0 ? gradients : gradients.add(values, alpha: WeightDecay);
        if (_momentum != 0)
        {
            if (step == 0) _velocity.copy_(direction);
            else _velocity.mul_(_momentum).add_(direction);
            direction = _nesterov ? direction.add(_velocity, alpha: _momentum) : _velocity;
        }
        values.add_(direction, alpha: -LearningRate);
    }
}
