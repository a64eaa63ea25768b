namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>The shape of the forward-noising schedule.</summary>
public enum NoiseScheduleKind
{
    /// <summary>β linear from 1e-4 to 0.02 (Ho et al., 2020).</summary>
    Linear,
    /// <summary>ᾱ_t = cos²(((t/T + s)/(1 + s)) · π/2) with s = 0.008, β capped at 0.999 (Nichol and Dhariwal, 2021).</summary>
    Cosine,
}

/// <summary>
/// A discrete-time variance-preserving noise schedule: x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε for t = 0 … T−1.
/// Everything a sampler needs is derived from ᾱ (held in double precision).
/// </summary>
public sealed class NoiseSchedule
{
    private readonly double[] _alphaBar;

    private NoiseSchedule(NoiseScheduleKind kind, double[] alphaBar)
    {
        Kind = kind;
        _alphaBar = alphaBar;
    }

    /// <summary>Which formula made this schedule.</summary>
    public NoiseScheduleKind Kind { get; }

    /// <summary>Number of discrete steps T.</summary>
    public int Steps => _alphaBar.Length;

    /// <summary>Builds a schedule of <paramref name="steps"/> steps.</summary>
    public static NoiseSchedule Create(NoiseScheduleKind kind, int steps = 1000)
    {
        if (steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), $"A noise schedule needs at least 2 steps; got {steps}.");
        var alphaBar = new double[steps];
        double product = 1;
        for (int t = 0; t < steps; t++)
        {
            double beta = kind switch
            {
                NoiseScheduleKind.Linear => 1e-4 + (0.02 - 1e-4) * t / (steps - 1),
                NoiseScheduleKind.Cosine => Math.Min(1 - CosineAlphaBar(t + 1, steps) / CosineAlphaBar(t, steps), 0.999),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), $"Unknown schedule {kind}."),
            };
            product *= 1 - beta;
            alphaBar[t] = product;
        }
        return new NoiseSchedule(kind, alphaBar);
    }

    private static double CosineAlphaBar(double t, int steps)
    {
        const double s = 0.008;
        double angle = (t / steps + s) / (1 + s) * Math.PI / 2;
        return Math.Cos(angle) * Math.Cos(angle);
    }

    /// <summary>ᾱ_t, the fraction of signal variance left at step t.</summary>
    public double AlphaBar(int t) => _alphaBar[t];

    /// <summary>β_t = 1 − ᾱ_t / ᾱ_{t−1}.</summary>
    public double Beta(int t) => 1 - _alphaBar[t] / (t == 0 ? 1 : _alphaBar[t - 1]);

    /// <summary>√ᾱ_t: the signal scale.</summary>
    public double SignalScale(int t) => Math.Sqrt(_alphaBar[t]);

    /// <summary>√(1 − ᾱ_t): the noise scale.</summary>
    public double NoiseScale(int t) => Math.Sqrt(1 - _alphaBar[t]);

    /// <summary>λ_t = log(√ᾱ_t / √(1 − ᾱ_t)), the half log signal-to-noise ratio that DPM-Solver steps in.</summary>
    public double HalfLogSnr(int t) => 0.5 * (Math.Log(_alphaBar[t]) - Math.Log(1 - _alphaBar[t]));

    /// <summary>x̂₀ = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t: the clean image implied by a noise prediction at step t.</summary>
    public TorchSharp.torch.Tensor CleanEstimate(TorchSharp.torch.Tensor noisy, TorchSharp.torch.Tensor noise, int t) =>
        (noisy - NoiseScale(t) * noise) / SignalScale(t);

    /// <summary>ε = (x_t − √ᾱ_t x̂₀) / √(1 − ᾱ_t): the noise implied by a clean-image estimate at step t, the inverse of <see cref="CleanEstimate"/>.</summary>
    public TorchSharp.torch.Tensor NoiseEstimate(TorchSharp.torch.Tensor noisy, TorchSharp.torch.Tensor clean, int t) =>
        (noisy - SignalScale(t) * clean) / NoiseScale(t);

    /// <summary>
    /// <paramref name="count"/> timesteps evenly spaced from T−1 down to 0 inclusive ("linspace" spacing): sampling
    /// starts from pure noise, and the last step's x̂₀ is taken at t = 0, where it is (almost) free of the
    /// posterior-mean shrinkage that a last step at larger t would leave.
    /// </summary>
    public int[] SamplingTimesteps(int count)
    {
        if (count < 1 || count > Steps)
            throw new ArgumentOutOfRangeException(nameof(count), $"Sampling steps must be in [1, {Steps}]; got {count}.");
        if (count == 1) return new[] { Steps - 1 };
        var result = new int[count];
        for (int i = 0; i < count; i++)
            result[i] = (int)Math.Round((Steps - 1) * (1 - (double)i / (count - 1)));
        return result;
    }
}
