using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>The classifier networks this package trains.</summary>
public enum ClassifierNetwork
{
    /// <summary>A small VGG-style CNN (about 0.3M parameters at width 32), for 28x28 grayscale images.</summary>
    SmallCnn,
    /// <summary>WRN-28-2 (1.5M parameters), the standard semi-supervised backbone for 32x32 colour images.</summary>
    WideResNet28x2,
    /// <summary>A pretrained ONNX image encoder (<c>Encoder</c> option), kept frozen: only a head is fitted on its features.</summary>
    OnnxEncoder,
}

/// <summary>
/// An image classifier split into a feature extractor and a linear head, so that later stages can reuse the
/// features. Input: <c>[N, C, H, W]</c> in [0, 1]; output: logits <c>[N, classes]</c>.
/// </summary>
public abstract class ImageClassifierNetwork : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module with TorchSharp's module name.</summary>
    protected ImageClassifierNetwork(string name) : base(name) { }

    /// <summary>Length of the feature vector that the head reads.</summary>
    public abstract int FeatureLength { get; }

    /// <summary>Pooled features <c>[N, FeatureLength]</c> of images in [0, 1].</summary>
    public Tensor Features(Tensor images)
    {
        using var centred = images.mul(2).sub_(1);   // [0, 1] -> [-1, 1]: every caller passes raw pixels
        return ExtractFeatures(centred);
    }

    /// <summary>Pooled features of images already mapped to [-1, 1].</summary>
    protected internal abstract Tensor ExtractFeatures(Tensor images);

    /// <summary>
    /// Whether the network can give its last feature map averaged over a grid (<see cref="GridFeatures"/> with a grid
    /// above 0): true for the convolutional networks, false for an encoder that only gives pooled features.
    /// </summary>
    public virtual bool HasFeatureMap => false;

    /// <summary>
    /// The pooled features of images in [0, 1], followed, for <paramref name="grid"/> G above 0, by the last feature
    /// map averaged over a G × G grid of cells: <c>[N, FeatureLength · (1 + G²)]</c>. The pooled features say what
    /// is in the image; the grid also says where, which global pooling throws away.
    /// </summary>
    public Tensor GridFeatures(Tensor images, int grid)
    {
        using var centred = images.mul(2).sub_(1);
        return ExtractGridFeatures(centred, grid);
    }

    /// <summary><see cref="GridFeatures"/> of images already mapped to [-1, 1].</summary>
    protected internal virtual Tensor ExtractGridFeatures(Tensor images, int grid) => grid == 0
        ? ExtractFeatures(images)
        : throw new NotSupportedException($"{GetType().Name} gives pooled features only; it has no feature map to average over a {grid} x {grid} grid.");

    /// <summary>Length of <see cref="GridFeatures"/> for <paramref name="grid"/>.</summary>
    public int GridFeatureLength(int grid) => FeatureLength * (1 + grid * grid);

    /// <summary>A feature map <c>[N, C, h, w]</c> averaged globally, then (grid above 0) over a grid × grid grid, joined: <c>[N, C · (1 + grid²)]</c>.</summary>
    protected static Tensor PoolWithGrid(Tensor map, int grid)
    {
        var pooled = nn.functional.adaptive_avg_pool2d(map, 1).flatten(1);
        if (grid == 0) return pooled;
        using (pooled)
        using (var cells = nn.functional.adaptive_avg_pool2d(map, grid).flatten(1))
            return cat(new[] { pooled, cells }, 1);
    }

    /// <summary>Logits from features.</summary>
    public abstract Tensor Head(Tensor features);

    /// <inheritdoc/>
    public override Tensor forward(Tensor images) => Head(Features(images));

    /// <summary>Builds the network described by <paramref name="spec"/>.</summary>
    /// <param name="spec">Architecture and sizes.</param>
    /// <param name="shape">Shape of one input image; needed only by a head that reads orientation histograms
    /// (<see cref="NetworkSpec.HeadGradientWeight"/> above 0).</param>
    public static ImageClassifierNetwork Create(NetworkSpec spec, Data.ImageShape? shape = null)
    {
        ImageClassifierNetwork network = spec.Kind switch
        {
            ClassifierNetwork.SmallCnn => new SmallCnn(spec.Channels, spec.Classes, spec.Width),
            ClassifierNetwork.WideResNet28x2 => new WideResNet(spec.Channels, spec.Classes, depth: 28, widen: spec.Width),
            ClassifierNetwork.OnnxEncoder => throw new ArgumentException("An ONNX encoder is built from its OnnxImageEncoder, not from a network description.", nameof(spec)),
            _ => throw new ArgumentOutOfRangeException(nameof(spec), $"Unknown network {spec.Kind}."),
        };
        return spec.NormalizedFeatureHead ? new NormalizedFeatureClassifier(network, spec.Classes, spec.HeadGradientWeight, shape, spec.FeatureGrid, spec.MirrorAveragedFeatures)
            : network;
    }
}

/// <summary>Everything needed to rebuild a classifier network before loading its weights.</summary>
/// <param name="Kind">Architecture.</param>
/// <param name="Channels">Input channels.</param>
/// <param name="Classes">Number of classes.</param>
/// <param name="Width">Base width: channels of the first block for <see cref="ClassifierNetwork.SmallCnn"/>; widen factor for the WRN.</param>
/// <param name="NormalizedFeatureHead">True for a frozen encoder read by a linear head on centred, L2-normalised
/// features (<see cref="NormalizedFeatureClassifier"/>); false for the network's own head.</param>
/// <param name="FeatureGrid">For a normalised-feature head, the grid over which it also reads the encoder's last
/// feature map (<see cref="NormalizedFeatureClassifier.FeatureGrid"/>); 0 otherwise.</param>
/// <param name="HeadGradientWeight">For a normalised-feature head, the weight of the images' orientation histograms
/// beside the encoder's features (<see cref="NormalizedFeatureClassifier.GradientWeight"/>); 0 otherwise.</param>
/// <param name="MirrorAveragedFeatures">For a normalised-feature head, whether its features are averaged over each image
/// and its horizontal mirror (<see cref="NormalizedFeatureClassifier.MirrorAveraged"/>); false otherwise.</param>
public sealed record NetworkSpec(ClassifierNetwork Kind, int Channels, int Classes, int Width, bool NormalizedFeatureHead = false, double HeadGradientWeight = 0,
    int FeatureGrid = 0, bool MirrorAveragedFeatures = false)
{
    /// <summary>The same network with its own head: the encoder of a frozen-feature classifier.</summary>
    public NetworkSpec AsEncoder() => this with { NormalizedFeatureHead = false, HeadGradientWeight = 0, FeatureGrid = 0, MirrorAveragedFeatures = false };
}
