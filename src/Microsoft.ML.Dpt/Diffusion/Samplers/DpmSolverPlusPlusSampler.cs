using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion.Samplers;

/// <summary>
/// DPM-Solver++ (2M) (Lu et al., 2022): a second-order multistep solver of the diffusion ODE in data prediction,
/// stepping in λ = log(α/σ). The first step is first order (DDIM); each later step corrects with the previous
/// step's x̂₀: D = (1 + 1/(2r)) x̂₀_i − 1/(2r) x̂₀_{i−1}, r = h_{i−1}/h_i, then
/// x_s = (σ_s/σ_t) x_t − α_s (e^{−h} − 1) D. The final step is first order, as in diffusers ("lower order final").
/// </summary>
public sealed class DpmSolverPlusPlusSampler : ISampler
{
    /// <inheritdoc/>
    public Tensor Sample(INoisePredictor model, NoiseSchedule schedule, Tensor noise, int steps, Generator? generator = null)
    {
        var timesteps = schedule.SamplingTimesteps(steps);
        var x = noise.clone();
        Tensor? previousX0 = null;
        double previousH = 0;
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
                double h = schedule.HalfLogSnr(s) - schedule.HalfLogSnr(t);
                var d = x0;
                bool lastStep = i + 2 == timesteps.Length;
                if (previousX0 is not null && !lastStep)
                {
                    double r = previousH / h;
                    d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previousX0;
                }
                next = schedule.NoiseScale(s) / schedule.NoiseScale(t) * x - schedule.SignalScale(s) * (Math.Exp(-h) - 1) * d;
                previousH = h;
            }
            else
            {
                next = x0;
            }
            previousX0?.Dispose();
            previousX0 = i + 1 < timesteps.Length ? x0.MoveToOuterDisposeScope() : null;   // the last x̂₀ is the result itself
            x.Dispose();
            x = next.MoveToOuterDisposeScope();
        }
        return x;
    }
}
