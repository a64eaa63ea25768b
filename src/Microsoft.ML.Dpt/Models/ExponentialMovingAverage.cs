using Microsoft.ML.Dpt.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// Keeps an exponential moving average of a model's parameters in a second model of the same architecture
/// (buffers such as BatchNorm statistics are copied). Predictions use the average, as in FixMatch and USB.
/// </summary>
/// <remarks>
/// The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates, so that a short run's average is not
/// dominated by the random initial weights (at decay 0.999, 100 plain updates leave 90% of them). Both models'
/// parameters are laid out in one flat buffer each, so an update is two kernels however many tensors the model
/// has; move both models to their device and precision before creating the average.
/// </remarks>
public sealed class ExponentialMovingAverage
{
    private readonly Tensor _source;
    private readonly Tensor _average;
    private readonly (Tensor Source, Tensor Average)[] _buffers;

    /// <summary>Starts the average at <paramref name="model"/>'s current weights, held in <paramref name="average"/>.</summary>
    public ExponentialMovingAverage(nn.Module model, nn.Module average, double decay)
    {
        if (decay is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(decay), $"EMA decay must be in [0, 1); got {decay}.");
        Decay = decay;
        Average = average;
        _source = FlatParameters.Of(model).Values;
        _average = FlatParameters.Of(average).Values;
        if (!_source.shape.SequenceEqual(_average.shape) || _source.dtype != _average.dtype)
            throw new ArgumentException($"The average must have the model's architecture and precision; it has {_average.numel()} {_average.dtype} parameters against {_source.numel()} {_source.dtype}.", nameof(average));
        _buffers = model.buffers().Zip(average.buffers()).ToArray();
        using var _ = no_grad();
        _average.copy_(_source);
        foreach (var (source, avg) in _buffers) avg.copy_(source);
        foreach (var p in average.parameters()) p.requires_grad = false;
        average.eval();
    }

    /// <summary>Weight of the old average at each update.</summary>
    public double Decay { get; }

    /// <summary>The model that holds the average.</summary>
    public nn.Module Average { get; }

    /// <summary>Number of updates so far.</summary>
    public long Updates { get; internal set; }

    /// <summary>average = d * average + (1 - d) * current with the warmed-up decay d; buffers copied.</summary>
    public void Update()
    {
        using var _ = no_grad();
        double decay = Math.Min(Decay, (1.0 + Updates) / (10.0 + Updates));
        Updates++;
        _average.mul_(decay).add_(_source, alpha: 1 - decay);
        foreach (var (source, avg) in _buffers) avg.copy_(source);
    }
}
