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
    /// The descriptors of <paramref name="images"/> (<c>[real + generated, channels, height, width]</c> in [0, 1], the
    /// real images first, on the device to work on), <c>[rows, <see cref="PatchDictionary.Length"/>]</c> on that device,
    /// from a dictionary fitted to the real rows alone with <paramref name="seed"/>; with
    /// <paramref name="mirrorAveraged"/>, each the mean of the image's and its mirror's
    /// (<see cref="NormalizedFeatureClassifier.AverageOverMirror"/>). <paramref name="real"/> is the dataset the real
    /// rows were read from: only its pixels are hashed for the key, so the caller's tensor is the one copy on the
    /// device. The caller owns the result.
    /// </summary>
    public Tensor Describe(ImageDataset real, Tensor images, bool mirrorAveraged, int seed, CancellationToken cancel, Action<string> log)
    {
        var expected = new long[] { real.Shape.Channels, real.Shape.Height, real.Shape.Width };
        if (images.dim() != 4 || images.shape[0] < real.Count || !images.shape.Skip(1).SequenceEqual(expected))
            throw new ArgumentException(
                $"Expected the {real.Count} real images of {real.Shape}, then any generated ones, as [rows, {string.Join(", ", expected)}]; got [{string.Join(", ", images.shape)}].",
                nameof(images));
        lock (_gate)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int extra = (int)images.shape[0] - real.Count;
            string key = Key(real, mirrorAveraged, seed, images.device);
            bool reused = _entry?.Key == key;
            using var scope = NewDisposeScope();
            if (!reused) Replace(Fit(images.narrow(0, 0, real.Count), mirrorAveraged, seed, key, cancel));
            var descriptors = _entry!.RealDescriptors.alias();
            if (extra > 0)
                descriptors = cat(new[] { descriptors, Read(_entry.Dictionary, images.narrow(0, real.Count, extra), mirrorAveraged, cancel) });
            log(reused
                ? $"patch dictionary of {PatchDictionary.Atoms} shapes and {real.Count} real images' descriptors reused, {extra} generated images described, {clock.Elapsed.TotalSeconds:F1} s"
                : $"patch dictionary of {PatchDictionary.Atoms} shapes fitted and {real.Count + extra} images described, {clock.Elapsed.TotalSeconds:F1} s");
            return descriptors.MoveToOuterDisposeScope();
        }
    }

    /// <summary>Frees the entry (its descriptors take 6.4 kB per real image).</summary>
    public void Clear()
    {
        lock (_gate) Replace(null);
    }

    private static Entry Fit(Tensor images, bool mirrorAveraged, int seed, string key, CancellationToken cancel)
    {
        using var scope = NewDisposeScope();
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
