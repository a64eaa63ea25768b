using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A frozen encoder read by a linear head on centred, L2-normalised features, the few-label classifier of DPT's
/// ImageNet recipe: logits = W · (f − μ) / ‖f − μ‖ + b, with f the encoder's pooled features and μ their mean over
/// the training images. The head's weights come from a fitted logistic regression or from class means
/// (<see cref="Training.FewLabelHeads.FrozenFeatureHead"/>), not from back-propagation.
/// </summary>
public sealed class NormalizedFeatureClassifier : ImageClassifierNetwork
{
    private const string CenterBuffer = "center";
    private readonly ImageClassifierNetwork encoder;
    private readonly Linear head;

    /// <summary>Wraps <paramref name="encoder"/> with a zero centre and an untrained head for <paramref name="classes"/> classes.</summary>
    public NormalizedFeatureClassifier(ImageClassifierNetwork encoder, int classes) : base(nameof(NormalizedFeatureClassifier))
    {
        this.encoder = encoder;
        FeatureLength = encoder.FeatureLength;
        head = nn.Linear(FeatureLength, classes);
        register_buffer(CenterBuffer, zeros(FeatureLength));   // read by name: moving the module to a device replaces it
        RegisterComponents();
    }

    /// <summary>The encoder whose features the head reads.</summary>
    public ImageClassifierNetwork Encoder => encoder;

    /// <inheritdoc/>
    public override int FeatureLength { get; }

    /// <inheritdoc/>
    protected internal override Tensor ExtractFeatures(Tensor images) => encoder.ExtractFeatures(images);

    /// <inheritdoc/>
    public override Tensor Head(Tensor features) => head.forward(Normalize(features));

    /// <summary>Centred, L2-normalised features: what the head reads.</summary>
    public Tensor Normalize(Tensor features) => nn.functional.normalize(features - Center, dim: 1);

    private Tensor Center => get_buffer(CenterBuffer) ?? throw new InvalidOperationException($"The '{CenterBuffer}' buffer is missing.");

    /// <summary>Sets the centre and the head's weights <c>[classes, FeatureLength]</c> and biases <c>[classes]</c>.</summary>
    internal void SetHead(float[] featureMean, float[] weights, float[] biases)
    {
        using var _ = no_grad();
        Center.copy_(tensor(featureMean));
        head.weight!.copy_(tensor(weights, head.weight.shape));
        head.bias!.copy_(tensor(biases));
    }
}
