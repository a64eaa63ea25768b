using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A small VGG-style CNN: three stages of (conv-BN-ReLU) x2 at widths w, 2w, 4w, with max-pooling between them,
/// global average pooling and a linear head. With w = 32 it reaches about 93% on Fashion-MNIST with all labels.
/// </summary>
public sealed class SmallCnn : ImageClassifierNetwork
{
    private readonly Sequential features;
    private readonly Dropout dropout;
    private readonly Linear classifier;

    /// <summary>Creates the network.</summary>
    /// <param name="channels">Input channels.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="width">Channels of the first stage (later stages double it).</param>
    public SmallCnn(int channels, int classes, int width = 32) : base(nameof(SmallCnn))
    {
        features = nn.Sequential(
            ConvBnRelu(channels, width), ConvBnRelu(width, width), nn.MaxPool2d(2),
            ConvBnRelu(width, 2 * width), ConvBnRelu(2 * width, 2 * width), nn.MaxPool2d(2),
            ConvBnRelu(2 * width, 4 * width), ConvBnRelu(4 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten());
        dropout = nn.Dropout(0.25);
        classifier = nn.Linear(4 * width, classes);
        FeatureLength = 4 * width;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int FeatureLength { get; }

    /// <inheritdoc/>
    protected internal override Tensor ExtractFeatures(Tensor images) => features.forward(images);

    /// <inheritdoc/>
    public override Tensor Head(Tensor features) => classifier.forward(dropout.forward(features));

    private static Sequential ConvBnRelu(int input, int output) => nn.Sequential(
        nn.Conv2d(input, output, 3, padding: 1, bias: false), nn.BatchNorm2d(output), nn.ReLU(inplace: true));
}
