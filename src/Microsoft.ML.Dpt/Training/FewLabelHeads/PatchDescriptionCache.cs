using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.FewLabelHeads;

/// <summary>
/// Keeps the <see cref="PatchDictionary"/> fitted to one set of real images and those images' descriptors, so that
/// labels propagated over the same images again in one process (several label counts, the propagations before and
/// after fine-tuning, stage 3's graph with the generated images) fit the dictionary and describe the real images
/// once: on two CPU cores that is minutes per propagation over 60,000 28 × 28 images. One entry: another set of real
/// images replaces it. The key is a SHA-256 digest of the pixels, so a changed image is never served stale.
/// </summary>
internal sealed class PatchDescriptionCache
{
    /// <summary>The cache the label-propagation graph uses.</summary>
    public static PatchDescriptionCache Shared { get; } = new();

    private readonly object _gate = new();
    private Entry? _entry;

    private sealed record Entry(string Key, PatchDictionary Dictionary, Tensor RealDescriptors);

    /// <summary>
    /// The descriptors of <paramref name="real"/>'s images and then of <paramref name="extra"/>'s (when given),
    /// <c>[real + extra, <see cref="PatchDictionary.Length"/>]</c> on <paramref name="device"/>, from a dictionary fitted
    /// to the real images alone with <paramref name="seed"/>; with <paramref name="mirrorAveraged"/>, each the mean of
    /// the image's and its mirror's (<see cref="NormalizedFeatureClassifier.AverageOverMirror"/>). The caller owns the
    /// result.
    /// </summary>
    public Tensor Describe(ImageDataset real, ImageDataset? extra, bool mirrorAveraged, int seed, Device device, CancellationToken cancel,
        Action<string> log)
    {
        lock (_gate)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string key = Key(real, mirrorAveraged, seed, device);
            bool reused = _entry?.Key == key;
            if (!reused) Replace(Fit(real, mirrorAveraged, seed, device, key, cancel));
            using var scope = NewDisposeScope();
            var descriptors = _entry!.RealDescriptors.alias();
            if (extra is not null)
                descriptors = cat(new[] { descriptors, Read(_entry.Dictionary, extra.ToTensor(device), mirrorAveraged, cancel) });
            log(reused
                ? $"patch dictionary of {PatchDictionary.Atoms} shapes and {real.Count} real images' descriptors reused, {extra?.Count ?? 0} generated images described, {clock.Elapsed.TotalSeconds:F1} s"
                : $"patch dictionary of {PatchDictionary.Atoms} shapes fitted and {real.Count + (extra?.Count ?? 0)} images described, {clock.Elapsed.TotalSeconds:F1} s");
            return descriptors.MoveToOuterDisposeScope();
        }
    }

    /// <summary>Frees the entry (its descriptors take 6.4 kB per real image).</summary>
    public void Clear()
    {
        lock (_gate) Replace(null);
    }

    private static Entry Fit(ImageDataset real, bool mirrorAveraged, int seed, Device device, string key, CancellationToken cancel)
    {
        using var scope = NewDisposeScope();
        var images = real.ToTensor(device);
        var dictionary = PatchDictionary.Learn(images, seed, cancel);
        try
        {
            var descriptors = Read(dictionary, images, mirrorAveraged, cancel);
            // The entry outlives every dispose scope of the propagation that made it.
            dictionary.DetachFromDisposeScope();
            return new Entry(key, dictionary, descriptors.DetachFromDisposeScope());
        }
        catch
        {
            dictionary.Dispose();
            throw;
        }
    }

    private static Tensor Read(PatchDictionary dictionary, Tensor images, bool mirrorAveraged, CancellationToken cancel) =>
        mirrorAveraged
            ? NormalizedFeatureClassifier.AverageOverMirror(images, x => dictionary.Describe(x, cancel))
            : dictionary.Describe(images, cancel);

    private void Replace(Entry? entry)
    {
        if (_entry is not null)
        {
            _entry.Dictionary.Dispose();
            _entry.RealDescriptors.Dispose();
        }
        _entry = entry;
    }

    private static string Key(ImageDataset real, bool mirrorAveraged, int seed, Device device)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{real.Count} images of {real.Shape}, mirror {mirrorAveraged}, seed {seed}, device {device}\n"));
        hash.AppendData(MemoryMarshal.AsBytes(real.Pixels.AsSpan()));
        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
