using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = TorchSharp.torch.Tensor;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models.Encoders;

/// <summary>
/// An <see cref="OnnxImageEncoder"/> as the frozen encoder of a <see cref="NormalizedFeatureClassifier"/>: a module
/// without parameters whose features come from ONNX Runtime on the CPU (the images are prepared with TorchSharp
/// on their device first). It has no head of its own.
/// </summary>
internal sealed class OnnxEncoderNetwork : ImageClassifierNetwork
{
    private const int BatchSize = 64;
    private readonly InferenceSession[] _sessions;
    private readonly string[] _inputNames;
    private readonly int _inputChannels;
    private readonly bool _oneImageAtATime;

    public OnnxEncoderNetwork(OnnxImageEncoder encoder) : base(nameof(OnnxEncoderNetwork))
    {
        Encoder = encoder;
        _sessions = encoder.Models.Select((model, i) => Open(model, i, encoder.Name)).ToArray();
        _inputNames = _sessions.Select((s, i) => Single(s.InputMetadata, "input", i, encoder.Name).Key).ToArray();
        var input = Single(_sessions[0].InputMetadata, "input", 0, encoder.Name).Value.Dimensions;
        int side = encoder.InputSide;
        if (input.Length != 4 || input[1] is not (1 or 3) || input[2] is not (-1) && input[2] != side || input[3] is not (-1) && input[3] != side)
            throw new ArgumentException($"ONNX encoder '{encoder.Name}' reads [{string.Join(", ", input)}]; expected [N, 1 or 3, {side}, {side}] (InputSide {side}).", nameof(encoder));
        _inputChannels = input[1];
        if (encoder.Mean.Count != 1 && encoder.Mean.Count != _inputChannels || encoder.Std.Count != 1 && encoder.Std.Count != _inputChannels)
            throw new ArgumentException($"ONNX encoder '{encoder.Name}' reads {_inputChannels} channels; give one mean and standard deviation or one per channel.", nameof(encoder));
        _oneImageAtATime = input[0] == 1;   // a fixed batch of one, as ML.NET's ResNet-18 has
        var output = Single(_sessions[^1].OutputMetadata, "output", _sessions.Length - 1, encoder.Name).Value.Dimensions;
        if (output.Length < 2 || output.Skip(1).Any(d => d < 1))
            throw new ArgumentException($"ONNX encoder '{encoder.Name}' writes [{string.Join(", ", output)}]; expected a fixed feature shape after the batch dimension.", nameof(encoder));
        FeatureLength = output.Skip(1).Aggregate(1, (a, b) => a * b);
        RegisterComponents();
    }

    /// <summary>The encoder it runs.</summary>
    public OnnxImageEncoder Encoder { get; }

    /// <inheritdoc/>
    public override int FeatureLength { get; }

    /// <inheritdoc/>
    protected internal override Tensor ExtractFeatures(Tensor images)
    {
        using var scope = NewDisposeScope();
        long n = images.shape[0];
        int side = Encoder.InputSide;
        var x = (images.to(ScalarType.Float32) + 1) / 2;   // Features() mapped [0, 1] to [-1, 1]; this model has its own mapping
        if (x.shape[2] != side || x.shape[3] != side)
            x = nn.functional.interpolate(x, new long[] { side, side }, mode: InterpolationMode.Bilinear, align_corners: false);
        if (x.shape[1] == 1 && _inputChannels == 3) x = x.expand(n, 3, side, side);
        else if (x.shape[1] != _inputChannels)
            throw new ArgumentException($"ONNX encoder '{Encoder.Name}' reads {_inputChannels}-channel images; got {x.shape[1]} channels.", nameof(images));
        var mean = tensor(Encoder.Mean.ToArray(), device: x.device).view(1, -1, 1, 1);
        var std = tensor(Encoder.Std.ToArray(), device: x.device).view(1, -1, 1, 1);
        var pixels = ((x * Encoder.PixelScale - mean) / std).contiguous().cpu().data<float>().ToArray();

        int perImage = _inputChannels * side * side, batch = _oneImageAtATime ? 1 : BatchSize;
        var features = new float[n * FeatureLength];
        for (int start = 0; start < n; start += batch)
        {
            int count = (int)Math.Min(batch, n - start);
            var value = new DenseTensor(pixels.AsMemory(start * perImage, count * perImage), new[] { count, _inputChannels, side, side });
            for (int i = 0; i < _sessions.Length; i++)
            {
                using var results = _sessions[i].Run(new[] { NamedOnnxValue.CreateFromTensor(_inputNames[i], value) });
                value = results.First().AsTensor<float>().ToDenseTensor();   // a copy: the results are freed here
            }
            value.Buffer.Span.CopyTo(features.AsSpan(start * FeatureLength, count * FeatureLength));
        }
        return tensor(features, new long[] { n, FeatureLength }).to(images.device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor Head(Tensor features) =>
        throw new InvalidOperationException($"ONNX encoder '{Encoder.Name}' has no head of its own; a NormalizedFeatureClassifier puts one on its features.");

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) foreach (var session in _sessions) session.Dispose();
        base.Dispose(disposing);
    }

    private static InferenceSession Open(byte[] model, int index, string name)
    {
        try
        {
            return new InferenceSession(model);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ArgumentException($"ONNX encoder '{name}': model {index} cannot be loaded by ONNX Runtime: {e.Message}", nameof(model), e);
        }
    }

    private static KeyValuePair<string, NodeMetadata> Single(IReadOnlyDictionary<string, NodeMetadata> nodes, string what, int index, string name) =>
        nodes.Count == 1 ? nodes.First()
            : throw new ArgumentException($"ONNX encoder '{name}': model {index} has {nodes.Count} {what}s ({string.Join(", ", nodes.Keys)}); expected exactly one.");
}
