using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models.Encoders;
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

    /// <summary>The most probable class of each of <paramref name="count"/> images <c>[count, C, H, W]</c> (the first one on a tie).</summary>
    public int[] PredictClasses(ReadOnlySpan<float> pixels, int count)
    {
        var probabilities = PredictProbabilities(pixels, count);
        int classes = ClassNames.Count;
        var predicted = new int[count];
        for (int i = 0; i < count; i++) predicted[i] = MostProbable(probabilities.AsSpan(i * classes, classes));
        return predicted;
    }

    /// <summary>The index of the largest of one image's class probabilities (the first one on a tie).</summary>
    internal static int MostProbable(ReadOnlySpan<float> probabilities)
    {
        int best = 0;
        for (int c = 1; c < probabilities.Length; c++)
            if (probabilities[c] > probabilities[best]) best = c;
        return best;
    }

    /// <summary>Writes the network description to a manifest; returns the file entries: the weights under
    /// <paramref name="weightsEntry"/> and, for an ONNX encoder, its models.</summary>
    internal Dictionary<string, Action<Stream>> WriteTo(JsonObject manifest, string weightsEntry)
    {
        manifest["network"] = new JsonObject
        {
            ["kind"] = Spec.Kind.ToString(), ["channels"] = Spec.Channels, ["classes"] = Spec.Classes, ["width"] = Spec.Width,
            ["normalizedFeatureHead"] = Spec.NormalizedFeatureHead, ["headGradientWeight"] = Spec.HeadGradientWeight,
            ["featureGrid"] = Spec.FeatureGrid, ["mirrorAveragedFeatures"] = Spec.MirrorAveragedFeatures,
        };
        manifest["imageShape"] = new JsonArray(Shape.Channels, Shape.Height, Shape.Width);
        manifest["classNames"] = new JsonArray(ClassNames.Select(n => (JsonNode)n!).ToArray());
        var entries = new Dictionary<string, Action<Stream>> { [weightsEntry] = stream => Network.save(stream) };
        if (Network is NormalizedFeatureClassifier { Encoder: OnnxEncoderNetwork onnx })
        {
            var encoder = onnx.Encoder;
            manifest["onnxEncoder"] = new JsonObject
            {
                ["name"] = encoder.Name, ["inputSide"] = encoder.InputSide, ["pixelScale"] = encoder.PixelScale,
                ["mean"] = new JsonArray(encoder.Mean.Select(v => (JsonNode)v).ToArray()),
                ["std"] = new JsonArray(encoder.Std.Select(v => (JsonNode)v).ToArray()),
                ["models"] = encoder.Models.Count,
            };
            for (int i = 0; i < encoder.Models.Count; i++)
            {
                var model = encoder.Models[i];
                entries[OnnxModelEntry(i)] = stream => stream.Write(model);
            }
        }
        return entries;
    }

    private static string OnnxModelEntry(int index) => $"encoder-{index}.onnx";

    /// <summary>The ONNX encoder a file describes, with its models read from the file's entries.</summary>
    private static OnnxImageEncoder ReadOnnxEncoder(ModelFile.Reader file)
    {
        var description = file.Manifest["onnxEncoder"] as JsonObject ?? throw file.Damaged("manifest value 'onnxEncoder' is missing");
        float[] Floats(string key) => description[key] is JsonArray values
            ? values.Select(v => (float?)v ?? throw file.Damaged($"the ONNX encoder's '{key}' holds a null")).ToArray()
            : throw file.Damaged($"the ONNX encoder's '{key}' is missing");
        try
        {
            int count = (int?)description["models"] ?? 0;
            var models = Enumerable.Range(0, count).Select(i =>
            {
                using var stream = file.ReadEntry(OnnxModelEntry(i));
                return stream.ToArray();
            }).ToArray();
            return new OnnxImageEncoder((string?)description["name"] ?? "ONNX encoder", models, (int?)description["inputSide"] ?? 0,
                (float?)description["pixelScale"] ?? 0, Floats("mean"), Floats("std"));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw file.Damaged($"its ONNX encoder description is unusable ({e.Message})");
        }
    }

    /// <summary>Rebuilds a classifier from a manifest and its weights entry.</summary>
    internal static TrainedClassifier ReadFrom(ModelFile.Reader file, string weightsEntry, Device device)
    {
        var network = file.Manifest["network"] as JsonObject ?? throw file.Damaged("manifest value 'network' is missing");
        if (!Enum.TryParse<ClassifierNetwork>((string?)network["kind"], out var kind))
            throw file.Damaged($"unknown network kind '{network["kind"]}'");
        var spec = new NetworkSpec(kind, (int?)network["channels"] ?? 0, (int?)network["classes"] ?? 0, (int?)network["width"] ?? 0,
            (bool?)network["normalizedFeatureHead"] ?? false, (double?)network["headGradientWeight"] ?? 0,   // files before the histograms have no weight
            (int?)network["featureGrid"] ?? 0,            // nor those before the grid a grid
            (bool?)network["mirrorAveragedFeatures"] ?? false);
        var dims = file.Get<int[]>("imageShape");
        var classNames = file.Get<string[]>("classNames");
        if (dims.Length != 3 || spec.Channels != dims[0] || spec.Classes != classNames.Length || spec.Width < 1)
            throw file.Damaged("the network description does not match the image shape and classes");
        if (!(spec.HeadGradientWeight >= 0 && double.IsFinite(spec.HeadGradientWeight)) || (spec.HeadGradientWeight > 0 && !spec.NormalizedFeatureHead))
            throw file.Damaged($"its head gradient weight {spec.HeadGradientWeight} is not a non-negative number of a normalised-feature head");
        if (spec.FeatureGrid < 0 || (spec.FeatureGrid > 0 && (!spec.NormalizedFeatureHead || spec.Kind == ClassifierNetwork.OnnxEncoder)))
            throw file.Damaged($"its feature grid {spec.FeatureGrid} is not 0 or the positive grid of a normalised-feature head on a convolutional encoder");
        if (spec.MirrorAveragedFeatures && !spec.NormalizedFeatureHead)
            throw file.Damaged("it averages features over mirrors without a normalised-feature head");
        var shape = new ImageShape(dims[0], dims[1], dims[2]);
        var model = spec.Kind == ClassifierNetwork.OnnxEncoder
            ? new NormalizedFeatureClassifier(new OnnxEncoderNetwork(ReadOnnxEncoder(file)), spec.Classes, spec.HeadGradientWeight, shape,
                mirrorAveraged: spec.MirrorAveragedFeatures)
            : ImageClassifierNetwork.Create(spec, shape);
        file.LoadWeights(model, weightsEntry, $"{spec.Kind} network");
        model.to(device);
        return new TrainedClassifier(model, spec, shape, classNames, device);
    }

    /// <inheritdoc/>
    public void Dispose() => Network.Dispose();
}
