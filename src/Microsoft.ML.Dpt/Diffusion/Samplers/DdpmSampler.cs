using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion.Samplers;

/// <summary>
/// DDPM ancestral sampling (Ho et al., 2020) on a strided subsequence t → s of the training steps: the posterior
/// q(x_s | x_t, x̂₀) with β̃ = (1 − ᾱ_s)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_s), which is exact DDPM when every step is used.
/// </summary>
public sealed class DdpmSampler : ISampler
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
            Tensor next;
            if (i + 1 < timesteps.Length)
            {
                int s = timesteps[i + 1];
                double alphaT = schedule.AlphaBar(t), alphaS = schedule.AlphaBar(s);
                double stepAlpha = alphaT / alphaS;   // ᾱ_t / ᾱ_s: the "α" of the combined step
                double variance = (1 - alphaS) / (1 - alphaT) * (1 - stepAlpha);
                double x0Weight = Math.Sqrt(alphaS) * (1 - stepAlpha) / (1 - alphaT);
                double xtWeight = Math.Sqrt(stepAlpha) * (1 - alphaS) / (1 - alphaT);
                // Noise is drawn on the CPU generator and moved, so a seed gives the same samples on every device.
                var z = randn(x.shape, dtype: x.dtype, generator: generator).to(x.device);
                next = x0Weight * x0 + xtWeight * x + Math.Sqrt(variance) * z;
            }
            else
            {
                next = x0;
            }
            x.Dispose();
            x = next.MoveToOuterDisposeScope();
        }
        return x;
    }
}
