using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Checkpoints;

/// <summary>
/// A SHA-256 digest of everything that decides a training run's result: the stage, its options (all but those
/// marked <see cref="ExcludedFromFingerprintAttribute"/>), the seed and the training data. A checkpoint is resumed
/// only when its fingerprint equals the new run's, so a changed option or data set never resumes a stale run.
/// </summary>
internal sealed class TrainingFingerprint
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public TrainingFingerprint(string stage, object options, int seed)
    {
        Add("stage", stage);
        AddOptions(options, prefix: "");
        Add("seed", seed.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Adds a named value.</summary>
    public TrainingFingerprint Add(string name, string value)
    {
        _hash.AppendData(Encoding.UTF8.GetBytes($"{name}={value}\n"));
        return this;
    }

    /// <summary>Adds a data set: shape, class names, every pixel and label (or "none").</summary>
    public TrainingFingerprint Add(string name, ImageDataset? data)
    {
        if (data is null) return Add(name, "none");
        Add(name, $"{data.Count} images of {data.Shape}, classes {string.Join("|", data.ClassNames)}");
        _hash.AppendData(MemoryMarshal.AsBytes(data.Pixels.AsSpan()));
        _hash.AppendData(MemoryMarshal.AsBytes(data.Labels.AsSpan()));
        return this;
    }

    /// <summary>Adds numbers bit for bit (for example per-row weights), or "none".</summary>
    public TrainingFingerprint Add(string name, float[]? values)
    {
        if (values is null) return Add(name, "none");
        Add(name, $"{values.Length} values");
        _hash.AppendData(MemoryMarshal.AsBytes(values.AsSpan()));
        return this;
    }

    /// <summary>Adds a data set's images without their labels (for training that reads no label).</summary>
    public TrainingFingerprint AddImages(string name, ImageDataset data)
    {
        Add(name, $"{data.Count} images of {data.Shape}");
        _hash.AppendData(MemoryMarshal.AsBytes(data.Pixels.AsSpan()));
        return this;
    }

    /// <summary>Adds a module's weights (for example the classifier a fine-tuning run starts from), or "none".</summary>
    public TrainingFingerprint Add(string name, nn.Module? weights)
    {
        if (weights is null) return Add(name, "none");
        Add(name, "weights");
        foreach (var (key, tensor) in weights.state_dict())
        {
            using var cpu = tensor.detach().cpu().to(ScalarType.Float32);
            _hash.AppendData(Encoding.UTF8.GetBytes(key));
            _hash.AppendData(MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()));
        }
        return this;
    }

    /// <summary>
    /// Adds <see cref="Convolution.Arithmetic"/> when <paramref name="network"/> has layers whose input channels the
    /// CPU pads, so that a checkpoint trained before they were padded (a wrong forward pass on AVX-512) is trained
    /// afresh; a network without such layers computed right before and keeps its fingerprint.
    /// </summary>
    public TrainingFingerprint AddConvolutionArithmetic(nn.Module network) =>
        Convolution.PadsInputsIn(network) ? Add("convolution", Convolution.Arithmetic) : this;

    /// <summary>The digest as lowercase hex.</summary>
    public string Digest() => Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();

    private void AddOptions(object options, string prefix)
    {
        foreach (var property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (property.GetCustomAttribute<ExcludedFromFingerprintAttribute>() is not null || property.GetIndexParameters().Length > 0) continue;
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var value = property.GetValue(options);
            if (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal))
                Add(prefix + property.Name, Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null");
            else if (value is not null && type.Assembly == typeof(TrainingFingerprint).Assembly && type.IsClass)
                AddOptions(value, prefix + property.Name + ".");   // nested settings such as AugmentationPolicy
            else if (value is not null)
                throw new InvalidOperationException($"Option {prefix}{property.Name} of type {type.Name} cannot be fingerprinted; mark it [ExcludedFromFingerprint] or add it by hand.");
        }
    }
}
