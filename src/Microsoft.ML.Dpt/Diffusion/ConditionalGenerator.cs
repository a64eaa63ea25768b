using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Persistence;
using Microsoft.ML.Dpt.Runtime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>
/// A trained class-conditional diffusion model ready to generate: the EMA denoiser with its schedule, the class
/// names and image shape, and default sampling settings (sampler, steps, guidance scale, clamping). The same seed gives
/// the same images on any device (noise is drawn on the CPU).
/// </summary>
public sealed class ConditionalGenerator : IDisposable
{
    private const string Kind = "Microsoft.ML.Dpt.ConditionalGenerator";
    /// <summary>2 added <see cref="ClipDenoisedImages"/>; a version-1 file samples without it, as it did.</summary>
    private const int FormatVersion = 2;
    private const string WeightsEntry = "denoiser.bin";
    private const int GenerationBatchSize = 250;

    internal ConditionalGenerator(DiffusionModel model, DenoiserSpec spec, ImageShape shape, IReadOnlyList<string> classNames, Device device,
        SamplerKind sampler, int samplingSteps, double guidanceScale, bool clipDenoisedImages)
    {
        Model = model;
        Spec = spec;
        Shape = shape;
        ClassNames = classNames;
        Device = device;
        Sampler = sampler;
        SamplingSteps = samplingSteps;
        GuidanceScale = guidanceScale;
        ClipDenoisedImages = clipDenoisedImages;
        Model.Network.eval();
    }

    /// <summary>The denoiser with its schedule.</summary>
    public DiffusionModel Model { get; }
    /// <summary>Backbone, size and shapes of the denoiser.</summary>
    public DenoiserSpec Spec { get; }
    /// <summary>Shape of one generated image.</summary>
    public ImageShape Shape { get; }
    /// <summary>Class names in class-index order.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Device that holds the weights.</summary>
    public Device Device { get; }
    /// <summary>Default sampler.</summary>
    public SamplerKind Sampler { get; }
    /// <summary>Default number of sampling steps.</summary>
    public int SamplingSteps { get; }
    /// <summary>Default guidance scale.</summary>
    public double GuidanceScale { get; }
    /// <summary>Whether sampling clamps each step's clean-image estimate to the data range (<see cref="ClippedCleanEstimate"/>).</summary>
    public bool ClipDenoisedImages { get; }

    /// <summary>Generates <paramref name="count"/> images of class <paramref name="classIndex"/> as a tensor [count, C, H, W] in [0, 1] on the CPU.</summary>
    public Tensor GenerateTensor(int classIndex, int count, int seed, SamplerKind? sampler = null, int? steps = null, double? guidanceScale = null,
        CancellationToken cancellation = default)
    {
        if (classIndex < 0 || classIndex >= ClassNames.Count)
            throw new ArgumentOutOfRangeException(nameof(classIndex), $"Class index {classIndex} is outside [0, {ClassNames.Count - 1}].");
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"Image count must be at least 0; got {count}.");
        var chosen = Samplers.Sampler.Create(sampler ?? Sampler);
        int stepCount = steps ?? SamplingSteps;
        double scale = guidanceScale ?? GuidanceScale;
        var generator = new Generator((ulong)seed, CPU);
        var batches = new List<Tensor>();
        using var _ = no_grad();
        for (int start = 0; start < count; start += GenerationBatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = Math.Min(GenerationBatchSize, count - start);
            using var scope = NewDisposeScope();
            var noise = randn(new long[] { n, Shape.Channels, Shape.Height, Shape.Width }, generator: generator).to(Device);
            var labels = full(n, (long)classIndex, device: Device);
            INoisePredictor guided = new ClassifierFreeGuidance(Model, labels, scale);
            if (ClipDenoisedImages) guided = new ClippedCleanEstimate(guided, Model.Schedule);
            var sample = chosen.Sample(guided, Model.Schedule, noise, stepCount, generator);
            batches.Add(((sample.clamp(-1, 1) + 1) / 2).cpu().MoveToOuterDisposeScope());
        }
        if (batches.Count == 0) return zeros(0, Shape.Channels, Shape.Height, Shape.Width);
        var all = cat(batches.ToArray());
        foreach (var b in batches) b.Dispose();
        return all;
    }

    /// <summary>Generates <paramref name="count"/> images of a class as pixels [count, C, H, W] in [0, 1].</summary>
    public float[] Generate(int classIndex, int count, int seed, SamplerKind? sampler = null, int? steps = null, double? guidanceScale = null)
    {
        if (count == 0) return Array.Empty<float>();   // TorchSharp's ToArray fails on an empty tensor
        using var images = GenerateTensor(classIndex, count, seed, sampler, steps, guidanceScale);
        return images.data<float>().ToArray();
    }

    /// <summary>
    /// <paramref name="perClass"/> images of every class, labeled with their class. Class c uses seed
    /// <paramref name="seed"/> + c, so each class's images do not depend on how many the other classes get.
    /// </summary>
    public ImageDataset GenerateDataset(int perClass, int seed, CancellationToken cancellation = default)
    {
        var pixels = new List<float>();
        var labels = new List<int>();
        for (int c = 0; c < ClassNames.Count && perClass > 0; c++)
        {
            using var images = GenerateTensor(c, perClass, seed + c, cancellation: cancellation);
            pixels.AddRange(images.data<float>().ToArray());
            labels.AddRange(Enumerable.Repeat(c, perClass));
        }
        return new ImageDataset(pixels.ToArray(), labels.ToArray(), Shape, ClassNames);
    }

    /// <summary>Generated images of one class as an IDataView ("Image" vector [C, H, W] and "Label" key).</summary>
    public IDataView GenerateDataView(MLContext mlContext, int classIndex, int count, int seed) =>
        new ImageDataset(Generate(classIndex, count, seed), Enumerable.Repeat(classIndex, count).ToArray(), Shape, ClassNames).ToDataView(mlContext);

    /// <summary>Writes one PNG grid per class (<c>samples-class-K.png</c>, <paramref name="columns"/> images a row) and returns the paths.</summary>
    public IReadOnlyList<string> SaveGrids(string folder, int perClass, int seed, int columns = 10)
    {
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        for (int c = 0; c < ClassNames.Count; c++)
        {
            var path = Path.Combine(folder, $"samples-class-{c}.png");
            ImageGrid.Save(path, Generate(c, perClass, seed + c), perClass, Shape, columns);
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>Writes <paramref name="count"/> images of a class as separate PNG files (<c>class-K-NNNN.png</c>) and returns the paths.</summary>
    public IReadOnlyList<string> ExportImages(string folder, int classIndex, int count, int seed)
    {
        var pixels = Generate(classIndex, count, seed);
        var paths = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var path = Path.Combine(folder, $"class-{classIndex}-{i:D4}.png");
            ImageGrid.Save(path, pixels.AsSpan(i * Shape.Size, Shape.Size).ToArray(), 1, Shape, columns: 1);
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>Saves the generator (weights, schedule, class names, sampling defaults).</summary>
    public void Save(string path)
    {
        var manifest = new JsonObject
        {
            ["backbone"] = Spec.Backbone.ToString(), ["size"] = Spec.Size.ToString(),
            ["imageShape"] = new JsonArray(Shape.Channels, Shape.Height, Shape.Width),
            ["classNames"] = new JsonArray(ClassNames.Select(n => (JsonNode)n!).ToArray()),
            ["schedule"] = Model.Schedule.Kind.ToString(), ["scheduleSteps"] = Model.Schedule.Steps, ["prediction"] = Model.Prediction.ToString(),
            ["sampler"] = Sampler.ToString(), ["samplingSteps"] = SamplingSteps, ["guidanceScale"] = GuidanceScale,
            ["clipDenoisedImages"] = ClipDenoisedImages,
        };
        ModelFile.Write(path, Kind, FormatVersion, manifest, new Dictionary<string, Action<Stream>> { [WeightsEntry] = s => Model.Network.save(s) });
    }

    /// <summary>Loads a generator written by <see cref="Save"/>; it reproduces the saved one's images for the same seed.</summary>
    public static ConditionalGenerator Load(string path, DptDevice device = DptDevice.Auto)
    {
        var torchDevice = DeviceSelection.Resolve(device);
        using var file = ModelFile.Open(path, Kind, FormatVersion);
        T Enum<T>(string name) where T : struct, Enum =>
            System.Enum.TryParse<T>(file.Get<string>(name), out var value) ? value : throw file.Damaged($"manifest value '{name}' is not a {typeof(T).Name}");
        var dims = file.Get<int[]>("imageShape");
        var classNames = file.Get<string[]>("classNames");
        if (dims.Length != 3 || classNames.Length < 1) throw file.Damaged("imageShape or classNames is malformed");
        var spec = new DenoiserSpec(Enum<DenoiserBackbone>("backbone"), Enum<DenoiserSize>("size"), dims[0], dims[1], dims[2], classNames.Length);
        var network = DenoiserNetwork.Create(spec);
        file.LoadWeights(network, WeightsEntry, $"{spec.Size} {spec.Backbone}");
        network.to(torchDevice);
        var schedule = NoiseSchedule.Create(Enum<NoiseScheduleKind>("schedule"), file.Get<int>("scheduleSteps"));
        var model = new DiffusionModel(network, schedule, Enum<PredictionType>("prediction"));
        bool clip = file.Get<int>("formatVersion") >= 2 && file.Get<bool>("clipDenoisedImages");
        return new ConditionalGenerator(model, spec, new ImageShape(dims[0], dims[1], dims[2]), classNames, torchDevice,
            Enum<SamplerKind>("sampler"), file.Get<int>("samplingSteps"), file.Get<double>("guidanceScale"), clip);
    }

    /// <inheritdoc/>
    public void Dispose() => Model.Network.Dispose();
}
