using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Persistence;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A trained image classifier ready to score: the network (EMA weights, evaluation mode) on its device, the image
/// shape it expects and its class names.
/// </summary>
public sealed class TrainedClassifier : IDisposable
{
    private const int ScoringBatchSize = 512;

    internal TrainedClassifier(ImageClassifierNetwork network, NetworkSpec spec, ImageShape shape, IReadOnlyList<string> classNames, Device device)
    {
        Network = network;
        Spec = spec;
        Shape = shape;
        ClassNames = classNames;
        Device = device;
        Network.eval();
    }

    /// <summary>The network, in evaluation mode.</summary>
    public ImageClassifierNetwork Network { get; }
    /// <summary>Architecture and sizes.</summary>
    public NetworkSpec Spec { get; }
    /// <summary>Shape of one input image.</summary>
    public ImageShape Shape { get; }
    /// <summary>Class names in class-index order.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Device that holds the weights.</summary>
    public Device Device { get; }

    /// <summary>Class probabilities <c>[count, classes]</c> (row-major) for <paramref name="count"/> images <c>[count, C, H, W]</c>.</summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> pixels, int count) =>
        ImageBatches.Map(pixels, count, Shape, Device, images => Network.forward(images).softmax(-1), ScoringBatchSize);

    /// <summary>Writes the network description to a manifest and the weights to a stream.</summary>
    internal void WriteTo(JsonObject manifest, out Action<Stream> writeWeights)
    {
        manifest["network"] = new JsonObject
        {
            ["kind"] = Spec.Kind.ToString(), ["channels"] = Spec.Channels, ["classes"] = Spec.Classes, ["width"] = Spec.Width,
            ["normalizedFeatureHead"] = Spec.NormalizedFeatureHead,
        };
        manifest["imageShape"] = new JsonArray(Shape.Channels, Shape.Height, Shape.Width);
        manifest["classNames"] = new JsonArray(ClassNames.Select(n => (JsonNode)n!).ToArray());
        writeWeights = stream => Network.save(stream);
    }

    /// <summary>Rebuilds a classifier from a manifest and its weights entry.</summary>
    internal static TrainedClassifier ReadFrom(ModelFile.Reader file, string weightsEntry, Device device)
    {
        var network = file.Manifest["network"] as JsonObject ?? throw file.Damaged("manifest value 'network' is missing");
        if (!Enum.TryParse<ClassifierNetwork>((string?)network["kind"], out var kind))
            throw file.Damaged($"unknown network kind '{network["kind"]}'");
        var spec = new NetworkSpec(kind, (int?)network["channels"] ?? 0, (int?)network["classes"] ?? 0, (int?)network["width"] ?? 0,
            (bool?)network["normalizedFeatureHead"] ?? false);
        var dims = file.Get<int[]>("imageShape");
        var classNames = file.Get<string[]>("classNames");
        if (dims.Length != 3 || spec.Channels != dims[0] || spec.Classes != classNames.Length || spec.Width < 1)
            throw file.Damaged("the network description does not match the image shape and classes");
        var model = ImageClassifierNetwork.Create(spec);
        file.LoadWeights(model, weightsEntry, $"{spec.Kind} network");
        model.to(device);
        return new TrainedClassifier(model, spec, new ImageShape(dims[0], dims[1], dims[2]), classNames, device);
    }

    /// <inheritdoc/>
    public void Dispose() => Network.Dispose();
}
