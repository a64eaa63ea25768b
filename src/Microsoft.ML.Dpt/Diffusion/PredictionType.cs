namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>What the denoiser network outputs.</summary>
public enum PredictionType
{
    /// <summary>The added noise ε (Ho et al., 2020).</summary>
    Epsilon,
    /// <summary>v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans and Ho, 2022), better conditioned near t = 0 and t = T.</summary>
    Velocity,
}
