using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>
/// Classifier-free guidance (Ho and Salimans, 2022) as an <see cref="INoisePredictor"/>: one batched forward pass
/// over [x, x] with [labels, null class], then ε = ε_c + s · (ε_c − ε_u). With s = 0 it is the plain
/// conditional model (and skips the unconditional half).
/// </summary>
public sealed class ClassifierFreeGuidance : INoisePredictor
{
    private readonly IConditionalDenoiser _model;
    private readonly Tensor _labels;
    private readonly Tensor _batchedLabels;

    /// <summary>Guides <paramref name="model"/> toward <paramref name="labels"/> (class indices, one per sample).</summary>
    public ClassifierFreeGuidance(IConditionalDenoiser model, Tensor labels, double scale)
    {
        if (scale < 0 || !double.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), $"Guidance scale must be a non-negative number; got {scale}.");
        _model = model;
        _labels = labels;
        Scale = scale;
        _batchedLabels = cat(new[] { labels, full_like(labels, model.NullClass) });
    }

    /// <summary>The guidance scale s.</summary>
    public double Scale { get; }

    /// <summary>ε = ε_c + s (ε_c − ε_u), the formula on its own.</summary>
    public static Tensor Combine(Tensor conditional, Tensor unconditional, double scale) => conditional + scale * (conditional - unconditional);

    /// <inheritdoc/>
    public Tensor PredictNoise(Tensor noisy, int timestep)
    {
        if (Scale == 0) return _model.PredictNoise(noisy, timestep, _labels);
        using var scope = NewDisposeScope();
        var both = _model.PredictNoise(cat(new[] { noisy, noisy }), timestep, _batchedLabels);
        var halves = both.chunk(2);
        return Combine(halves[0], halves[1], Scale).MoveToOuterDisposeScope();
    }
}

/// <summary>A class-conditional noise predictor with a null class for unconditional prediction.</summary>
public interface IConditionalDenoiser
{
    /// <summary>Index of the null (unconditional) class: the number of classes.</summary>
    long NullClass { get; }

    /// <summary>ε̂(x_t, t, y) for class indices <paramref name="labels"/> (the null class for none).</summary>
    Tensor PredictNoise(Tensor noisy, int timestep, Tensor labels);
}
