using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion.Samplers;

/// <summary>
/// DDIM with η = 0 (Song et al., 2021): x_s = √ᾱ_s · x̂₀ + √(1 − ᾱ_s) · ε̂, with x̂₀ = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t.
/// Deterministic: the same noise gives the same sample.
/// </summary>
public sealed class DdimSampler : ISampler
{
    /// <inheritdoc/>
    public Tensor Sample(INoisePredictor model, NoiseSchedule schedule, Tensor noise, int steps, Generator? generator = null)
    {
        var timesteps = schedule.SamplingTimesteps(steps);
        var x = noise.clone();
        for (int i = 0; i < timesteps.Length; i++)
        {
            using var scope = NewDisposeScope();
            int t = timesteps[i];
            var eps = model.PredictNoise(x, t);
            var x0 = schedule.CleanEstimate(x, eps, t);
            var next = i + 1 < timesteps.Length
                ? schedule.SignalScale(timesteps[i + 1]) * x0 + schedule.NoiseScale(timesteps[i + 1]) * eps
                : x0;
            x.Dispose();
            x = next.MoveToOuterDisposeScope();
        }
        return x;
    }
}
