using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>
/// Keeps every step's clean-image estimate inside the data range: x̂₀ from the wrapped predictor is clamped to
/// [−1, 1] and ε is derived again from it (<see cref="NoiseSchedule.NoiseEstimate"/>). Any sampler that reads ε (DDPM, DDIM,
/// DPM-Solver++) then steps with the clamped x̂₀, as DDPM's original sampler and diffusers' <c>clip_sample</c> do.
/// </summary>
/// <remarks>
/// At large t the estimate divides the network's error by √ᾱ_t (0.006 at the last step of the linear schedule), so
/// a briefly trained model proposes x̂₀ far outside the data range; unclamped, those values carry into the next steps
/// and the samples saturate to black and white speckle. On full Fashion-MNIST with the quick preset's Tiny U-Net,
/// clamping took the Fréchet distance of 500 DPM-Solver++ samples to 500 test images from 41.6 to 17.0 (docs/results.md).
/// </remarks>
public sealed class ClippedCleanEstimate : INoisePredictor
{
    private readonly INoisePredictor _predictor;
    private readonly NoiseSchedule _schedule;

    /// <summary>Wraps <paramref name="predictor"/>, whose ε refers to <paramref name="schedule"/>'s steps.</summary>
    public ClippedCleanEstimate(INoisePredictor predictor, NoiseSchedule schedule)
    {
        _predictor = predictor;
        _schedule = schedule;
    }

    /// <inheritdoc/>
    public Tensor PredictNoise(Tensor noisy, int timestep)
    {
        using var scope = NewDisposeScope();
        var clean = _schedule.CleanEstimate(noisy, _predictor.PredictNoise(noisy, timestep), timestep).clamp(-1, 1);
        return _schedule.NoiseEstimate(noisy, clean, timestep).MoveToOuterDisposeScope();
    }
}
