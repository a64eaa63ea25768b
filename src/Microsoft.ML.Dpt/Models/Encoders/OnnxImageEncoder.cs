namespace Microsoft.ML.Dpt.Models.Encoders;

/// <summary>
/// A pretrained image encoder in ONNX format, run by ONNX Runtime: images in [0, 1] are resized to
/// <see cref="InputSide"/>, given three channels where the model wants them, mapped to
/// (x · <see cref="PixelScale"/> − mean) / std per channel, and passed through the ONNX models in order; the last
/// one's output, flattened, is the feature vector. A frozen-feature head (<c>Head = LogisticRegression</c> or
/// <c>NearestClassMean</c>) reads it, so colour photographs get strong features without any pretraining here.
/// The models travel inside every saved model that uses them.
/// </summary>
public sealed class OnnxImageEncoder
{
    /// <summary>The NuGet package that ships ML.NET's ImageNet ResNet-18 (as ONNX, with its preprocessing model).</summary>
    public const string ResNet18PackageName = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    private static readonly float[] ImageNetMean = { 0.485f, 0.456f, 0.406f };
    private static readonly float[] ImageNetStd = { 0.229f, 0.224f, 0.225f };

    internal OnnxImageEncoder(string name, IReadOnlyList<byte[]> models, int inputSide, float pixelScale, float[] mean, float[] std)
    {
        if (models.Count == 0) throw new ArgumentException("An ONNX encoder needs at least one model.", nameof(models));
        if (inputSide < 1) throw new ArgumentOutOfRangeException(nameof(inputSide), $"The input side must be at least 1 pixel; got {inputSide}.");
        if (!(pixelScale > 0) || !float.IsFinite(pixelScale)) throw new ArgumentOutOfRangeException(nameof(pixelScale), $"The pixel scale must be a positive number; got {pixelScale}.");
        if (mean.Length is not (1 or 3)) throw new ArgumentException($"Give one mean or one per channel (3); got {mean.Length}.", nameof(mean));
        if (std.Length is not (1 or 3) || std.Any(s => !(s > 0)))
            throw new ArgumentException($"Give one positive standard deviation or one per channel (3); got [{string.Join(", ", std)}].", nameof(std));
        Name = name;
        Models = models;
        InputSide = inputSide;
        PixelScale = pixelScale;
        Mean = mean;
        Std = std;
    }

    /// <summary>What the encoder is, for logs.</summary>
    public string Name { get; }

    /// <summary>Side of the square images the first model reads.</summary>
    public int InputSide { get; }

    /// <summary>Pixels in [0, 1] are multiplied by this first (255 for models that read 8-bit values).</summary>
    public float PixelScale { get; }

    /// <summary>Subtracted per channel after scaling.</summary>
    public IReadOnlyList<float> Mean { get; }

    /// <summary>Divides per channel after the mean is subtracted.</summary>
    public IReadOnlyList<float> Std { get; }

    /// <summary>The ONNX models, applied in order (each one's single output is the next one's single input).</summary>
    internal IReadOnlyList<byte[]> Models { get; }

    /// <summary>
    /// ML.NET's ImageNet ResNet-18 (512 features from its last pooling layer), from the files that the NuGet package
    /// <see cref="ResNet18PackageName"/> copies next to the application (<c>DnnImageModels/</c>): its preprocessing
    /// model (8-bit pixels minus the ImageNet mean image) then the network, at 224x224.
    /// </summary>
    /// <param name="modelFolder">The <c>DnnImageModels</c> folder; default: the one next to the application.</param>
    public static OnnxImageEncoder ResNet18(string? modelFolder = null)
    {
        var folder = modelFolder ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        var files = new[] { Path.Combine(folder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"), Path.Combine(folder, "ResNet18Onnx", "ResNet18.onnx") };
        foreach (var file in files)
            if (!File.Exists(file))
                throw new FileNotFoundException($"ResNet-18 encoder: '{file}' was not found. Add the NuGet package {ResNet18PackageName} to the application " +
                    "(it copies DnnImageModels/ next to it), or pass the folder that holds ResNetPrepOnnx/ and ResNet18Onnx/.", file);
        return new OnnxImageEncoder("ResNet-18 (ImageNet, ML.NET DnnImageFeaturizer)", files.Select(File.ReadAllBytes).ToArray(), 224, 255f, new[] { 0f }, new[] { 1f });
    }

    /// <summary>
    /// An encoder from an ONNX file whose single input is <c>[N or 1, 3 or 1, side, side]</c> floats and whose single
    /// output holds the features. The defaults suit torchvision-style ImageNet models: pixels in [0, 1], then the
    /// ImageNet mean and standard deviation per channel.
    /// </summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="inputSide">Side of the square images the model reads. Default: 224.</param>
    /// <param name="pixelScale">Pixels in [0, 1] are multiplied by this first. Default: 1.</param>
    /// <param name="mean">Per-channel mean subtracted after scaling. Default: ImageNet's (0.485, 0.456, 0.406).</param>
    /// <param name="std">Per-channel standard deviation divided by. Default: ImageNet's (0.229, 0.224, 0.225).</param>
    public static OnnxImageEncoder FromFile(string path, int inputSide = 224, float pixelScale = 1f, float[]? mean = null, float[]? std = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX encoder file '{path}' was not found.", path);
        return new OnnxImageEncoder(Path.GetFileName(path), new[] { File.ReadAllBytes(path) }, inputSide, pixelScale, mean ?? ImageNetMean, std ?? ImageNetStd);
    }
}
