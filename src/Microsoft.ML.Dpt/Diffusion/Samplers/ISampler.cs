using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion.Samplers;

/// <summary>Which sampler to use.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling on a strided subsequence of steps (stochastic).</summary>
    Ddpm,
    /// <summary>DDIM with η = 0 (deterministic given the starting noise).</summary>
    Ddim,
    /// <summary>DPM-Solver++ (2M): second-order multistep in data prediction (Lu et al., 2022).</summary>
    DpmSolverPlusPlus,
}

/// <summary>Turns noise into samples by integrating the reverse process of a <see cref="NoiseSchedule"/>.</summary>
public interface ISampler
{
    /// <summary>
    /// Runs <paramref name="steps"/> denoising steps from <paramref name="noise"/> (a sample of N(0, I) at step T−1).
    /// Randomness inside the sampler (DDPM) comes from <paramref name="generator"/>.
    /// </summary>
    Tensor Sample(INoisePredictor model, NoiseSchedule schedule, Tensor noise, int steps, Generator? generator = null);
}

/// <summary>Creates samplers by kind.</summary>
public static class Sampler
{
    /// <summary>The sampler of <paramref name="kind"/>.</summary>
    public static ISampler Create(SamplerKind kind) => kind switch
    {
        SamplerKind.Ddpm => new DdpmSampler(),
        SamplerKind.Ddim => new DdimSampler(),
        SamplerKind.DpmSolverPlusPlus => new DpmSolverPlusPlusSampler(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), $"Unknown sampler {kind}."),
    };
}
