using Microsoft.ML.Dpt.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A frozen encoder read by a linear head on centred, L2-normalised features, the few-label classifier of DPT's
/// ImageNet recipe: logits = W · (f − μ) / ‖f − μ‖ + b, with f the encoder's pooled features and μ their mean over
/// the training images. With a gradient weight w &gt; 0 the head also reads each image's
/// <see cref="OrientationHistograms"/> h: the description is [u, w·v] / ‖[u, w·v]‖, where u and v are f and h each
/// centred and L2-normalised, so that at w = 1 the encoder and the edge descriptor count equally. With a feature grid
/// G &gt; 0, f is the encoder's <see cref="ImageClassifierNetwork.GridFeatures"/>: its pooled features followed by its
/// last feature map averaged over G × G cells, centred and normalised together. With mirror averaging, every raw
/// feature (encoder and histograms) is the mean of the image's and its horizontal mirror's, so the head cannot tell
/// an image from its mirror. The head's weights
/// come from a fitted logistic regression or from class means (<see cref="Training.FewLabelHeads.FrozenFeatureHead"/>),
/// not from back-propagation.
/// </summary>
public sealed class NormalizedFeatureClassifier : ImageClassifierNetwork
{
    private const string CenterBuffer = "center";
    private readonly ImageClassifierNetwork encoder;
    private readonly Linear head;

    /// <summary>Wraps <paramref name="encoder"/> with a zero centre and an untrained head for <paramref name="classes"/> classes.</summary>
    /// <param name="encoder">The frozen encoder.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="gradientWeight">Weight of the images' orientation histograms beside the encoder's features (0: features only).</param>
    /// <param name="shape">Shape of one input image; needed (for the histograms' length) when <paramref name="gradientWeight"/> is above 0.</param>
    /// <param name="featureGrid">The grid over which the head also reads the encoder's last feature map (0: its pooled features alone); above 0 the encoder must have a feature map (<see cref="ImageClassifierNetwork.HasFeatureMap"/>).</param>
    /// <param name="mirrorAveraged">Whether the features are averaged over each image and its horizontal mirror (<see cref="MirrorAveraged"/>).</param>
    public NormalizedFeatureClassifier(ImageClassifierNetwork encoder, int classes, double gradientWeight = 0, ImageShape? shape = null, int featureGrid = 0,
        bool mirrorAveraged = false)
        : base(nameof(NormalizedFeatureClassifier))
    {
        if (!(gradientWeight >= 0 && double.IsFinite(gradientWeight)))
            throw new ArgumentOutOfRangeException(nameof(gradientWeight), gradientWeight, "The gradient weight must be a non-negative number.");
        if (gradientWeight > 0 && shape is null)
            throw new ArgumentNullException(nameof(shape), "A head that reads orientation histograms needs the image shape.");
        if (featureGrid < 0)
            throw new ArgumentOutOfRangeException(nameof(featureGrid), featureGrid, "The feature grid must be 0 (pooled features only) or a positive number of cells per side.");
        if (featureGrid > 0 && !encoder.HasFeatureMap)
            throw new ArgumentException($"The feature grid is {featureGrid}, but {encoder.GetType().Name} gives pooled features only; use grid 0.", nameof(featureGrid));
        this.encoder = encoder;
        FeatureGrid = featureGrid;
        MirrorAveraged = mirrorAveraged;
        EncoderPartLength = encoder.GridFeatureLength(featureGrid);
        GradientWeight = gradientWeight;
        HistogramLength = gradientWeight > 0 ? OrientationHistograms.LengthFor(shape!.Value) : 0;
        FeatureLength = EncoderPartLength + HistogramLength;
        head = nn.Linear(FeatureLength, classes);
        register_buffer(CenterBuffer, zeros(FeatureLength));   // read by name: moving the module to a device replaces it
        RegisterComponents();
    }

    /// <summary>The encoder whose features the head reads.</summary>
    public ImageClassifierNetwork Encoder => encoder;

    /// <summary>Weight of the orientation histograms beside the encoder's features (0: the head reads the features alone).</summary>
    public double GradientWeight { get; }

    /// <summary>Cells per side of the grid over which the head also reads the encoder's last feature map (0: the pooled features alone).</summary>
    public int FeatureGrid { get; }

    /// <summary>
    /// Whether each raw feature is the mean of the image's and its horizontal mirror's (<see cref="AverageOverMirror"/>):
    /// for classes that look the same mirrored (clothing, most photographs), not for text or digits.
    /// </summary>
    public bool MirrorAveraged { get; }

    /// <summary>Length of the encoder's part at the start of the feature vector: its <see cref="ImageClassifierNetwork.GridFeatures"/> at <see cref="FeatureGrid"/>.</summary>
    internal int EncoderPartLength { get; }

    /// <summary>Length of the orientation histograms at the end of the feature vector (0 when <see cref="GradientWeight"/> is 0).</summary>
    internal int HistogramLength { get; }

    /// <inheritdoc/>
    public override int FeatureLength { get; }

    /// <summary>
    /// The encoder's features (on the grid, if any), followed by the images' orientation histograms when the head
    /// reads them; with <see cref="MirrorAveraged"/>, their mean over each image and its mirror.
    /// </summary>
    protected internal override Tensor ExtractFeatures(Tensor images) =>
        MirrorAveraged ? AverageOverMirror(images, ExtractOnce) : ExtractOnce(images);

    /// <summary>
    /// The mean of <paramref name="extract"/> over <paramref name="images"/> (<c>[N, C, H, W]</c>) and their horizontal
    /// mirrors: a test-time augmentation that, on Fashion-MNIST, gave label propagation cleaner neighbours
    /// (docs/results.md). Every place that reads frozen features for one model must use it alike.
    /// </summary>
    internal static Tensor AverageOverMirror(Tensor images, Func<Tensor, Tensor> extract)
    {
        using var scope = NewDisposeScope();
        var sum = extract(images) + extract(images.flip(3));
        return (sum / 2).MoveToOuterDisposeScope();
    }

    private Tensor ExtractOnce(Tensor images)
    {
        var features = encoder.ExtractGridFeatures(images, FeatureGrid);
        if (HistogramLength == 0) return features;
        // The images are in [-1, 1] here: twice the gradients of [0, 1], which the per-part normalisation undoes.
        using var histograms = OrientationHistograms.Compute(images);
        using (features)
            return cat(new[] { features, histograms }, 1);
    }

    /// <inheritdoc/>
    public override Tensor Head(Tensor features) => head.forward(Normalize(features));

    /// <summary>The description the head reads: centred, L2-normalised features (each part on its own, then joined and normalised again).</summary>
    public Tensor Normalize(Tensor features)
    {
        using var scope = NewDisposeScope();
        var centred = features - Center;
        if (HistogramLength == 0) return nn.functional.normalize(centred, dim: 1).MoveToOuterDisposeScope();
        var encoderPart = nn.functional.normalize(centred.narrow(1, 0, EncoderPartLength), dim: 1);
        var histogramPart = nn.functional.normalize(centred.narrow(1, EncoderPartLength, HistogramLength), dim: 1) * GradientWeight;
        return nn.functional.normalize(cat(new[] { encoderPart, histogramPart }, 1), dim: 1).MoveToOuterDisposeScope();
    }

    private Tensor Center => get_buffer(CenterBuffer) ?? throw new InvalidOperationException($"The '{CenterBuffer}' buffer is missing.");

    /// <summary>Sets the centre <c>[FeatureLength]</c> and the head's weights <c>[classes, FeatureLength]</c> and biases <c>[classes]</c>.</summary>
    internal void SetHead(float[] featureMean, float[] weights, float[] biases)
    {
        using var _ = no_grad();
        Center.copy_(tensor(featureMean));
        head.weight!.copy_(tensor(weights, head.weight.shape));
        head.bias!.copy_(tensor(biases));
    }
}
