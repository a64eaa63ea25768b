using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// SimCLR's projection head: Linear, BatchNorm, ReLU, Linear. The contrastive loss is computed on its output and the
/// head is thrown away after pretraining; the encoder's features before it transfer better than the projection.
/// </summary>
internal sealed class ProjectionHead : nn.Module<Tensor, Tensor>
{
    private readonly Sequential layers;

    public ProjectionHead(int inputLength, int hiddenLength, int outputLength) : base(nameof(ProjectionHead))
    {
        layers = nn.Sequential(nn.Linear(inputLength, hiddenLength, hasBias: false), nn.BatchNorm1d(hiddenLength), nn.ReLU(inplace: true),
            nn.Linear(hiddenLength, outputLength));
        RegisterComponents();
    }

    public override Tensor forward(Tensor features) => layers.forward(features);
}

/// <summary>An encoder and its projection head in one module, so that one optimiser and one checkpoint hold both.</summary>
internal sealed class ContrastiveNetwork : nn.Module<Tensor, Tensor>
{
    private readonly ImageClassifierNetwork encoder;
    private readonly ProjectionHead projection;

    public ContrastiveNetwork(ImageClassifierNetwork encoder, int projectionLength) : base(nameof(ContrastiveNetwork))
    {
        this.encoder = encoder;
        projection = new ProjectionHead(encoder.FeatureLength, encoder.FeatureLength, projectionLength);
        RegisterComponents();
    }

    /// <summary>The encoder alone, in evaluation mode, once pretraining is over; the projection head is disposed.</summary>
    public ImageClassifierNetwork ReleaseEncoder()
    {
        projection.Dispose();
        encoder.eval();
        return encoder;
    }

    /// <summary>Projections <c>[N, projectionLength]</c> of images in [0, 1].</summary>
    public override Tensor forward(Tensor images) => projection.forward(encoder.Features(images));
}
