using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>
/// What a sampler needs from a model: the noise ε in x_t at integer step t (one step for the whole batch).
/// Samplers see only this, so any sampler works with any network, guided or not.
/// </summary>
public interface INoisePredictor
{
    /// <summary>ε̂(x_t, t) with the same shape as <paramref name="noisy"/>.</summary>
    Tensor PredictNoise(Tensor noisy, int timestep);
}
