using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models.Diffusion;

/// <summary>The denoiser backbones.</summary>
public enum DenoiserBackbone
{
    /// <summary>A U-Net: residual blocks with GroupNorm, time and class embeddings added in every block, self-attention at low resolutions.</summary>
    UNet,
    /// <summary>U-ViT (Bao et al., 2023; the backbone DPT uses): a ViT over patches with time and class as tokens and long skips.</summary>
    UViT,
}

/// <summary>Preset sizes of the denoisers.</summary>
public enum DenoiserSize
{
    /// <summary>A few thousand parameters: for tests.</summary>
    Tiny,
    /// <summary>A few million parameters: for 28x28 images.</summary>
    Small,
    /// <summary>Wider and deeper: for 32x32 colour images.</summary>
    Large,
}

/// <summary>Everything needed to rebuild a denoiser before loading its weights.</summary>
public sealed record DenoiserSpec(DenoiserBackbone Backbone, DenoiserSize Size, int Channels, int Height, int Width, int Classes);

/// <summary>
/// A class-conditional denoiser: (x_t in [-1, 1] scale, timestep t as a float per sample, class index per sample,
/// where index = number of classes is the null class) → network output with x_t's shape.
/// </summary>
public abstract class DenoiserNetwork : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module.</summary>
    protected DenoiserNetwork(string name, int classes) : base(name) => Classes = classes;

    /// <summary>Number of real classes; the null class is this index.</summary>
    public int Classes { get; }

    /// <summary>Builds the network for <paramref name="spec"/>.</summary>
    public static DenoiserNetwork Create(DenoiserSpec spec) => spec.Backbone switch
    {
        DenoiserBackbone.UNet => UNet.ForSize(spec),
        DenoiserBackbone.UViT => UViT.ForSize(spec),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), $"Unknown backbone {spec.Backbone}."),
    };

    /// <summary>Sinusoidal embedding of timesteps [N] into [N, dim] (Vaswani et al., as in DDPM).</summary>
    public static Tensor TimestepEmbedding(Tensor timesteps, int dim)
    {
        int half = dim / 2;
        var frequencies = exp(arange(half, dtype: ScalarType.Float32, device: timesteps.device) * (-Math.Log(10000.0) / half));
        var angles = timesteps.to(ScalarType.Float32).unsqueeze(1) * frequencies.unsqueeze(0);
        return cat(new[] { angles.sin(), angles.cos() }, 1);
    }

    /// <summary>Group normalisation with 32 groups where the channels allow it, else fewer, starting as the identity.</summary>
    internal static GroupNormalization Norm(int channels) =>
        new(channels % 32 == 0 ? 32 : channels % 8 == 0 ? 8 : channels % 4 == 0 ? 4 : 1, channels);
}
