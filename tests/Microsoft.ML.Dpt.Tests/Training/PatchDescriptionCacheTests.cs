using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class PatchDescriptionCacheTests
{
    private static readonly ImageDataset Real = TestData.FashionMnistSubset.Train.Select(Enumerable.Range(0, 60).ToArray());
    private static readonly ImageDataset Generated = TestData.FashionMnistSubset.Train.Select(Enumerable.Range(60, 7).ToArray());

    [Fact]
    public void TheSameRealImagesAreDescribedOnceAndGeneratedOnesByTheirDictionary()
    {
        var cache = new PatchDescriptionCache();   // its own, so tests running beside it cannot replace the entry
        var log = new List<string>();
        using var images = Real.ToTensor(CPU);
        using var withGenerated = cat(new[] { images, Generated.ToTensor(CPU) });
        using var first = cache.Describe(Real, images, mirrorAveraged: false, seed: 3, CancellationToken.None, log.Add);
        using var second = cache.Describe(Real, withGenerated, mirrorAveraged: false, seed: 3, CancellationToken.None, log.Add);

        Assert.Equal(new long[] { 60, PatchDictionary.Length }, first.shape);
        Assert.Equal(new long[] { 67, PatchDictionary.Length }, second.shape);
        Assert.StartsWith("patch dictionary of 400 shapes fitted and 60 images described", log[0]);
        Assert.StartsWith("patch dictionary of 400 shapes and 60 real images' descriptors reused, 7 generated images described", log[1]);
        // What a dictionary fitted afresh gives, to the bit: the real rows as cached, the generated rows described by it.
        using var fresh = PatchDictionary.Learn(images, seed: 3, CancellationToken.None);
        Assert.True(Same(fresh.Describe(images, CancellationToken.None), first));
        Assert.True(Same(second.narrow(0, 0, 60), first));
        Assert.True(Same(fresh.Describe(Generated.ToTensor(CPU), CancellationToken.None), second.narrow(0, 60, 7)));
        cache.Clear();
    }

    [Fact]
    public void AnyChangeToThePixelsTheSeedOrTheMirroringFitsItAgain()
    {
        var cache = new PatchDescriptionCache();
        var log = new List<string>();
        void Describe(ImageDataset real, int seed, bool mirror)
        {
            using var images = real.ToTensor(CPU);
            cache.Describe(real, images, mirror, seed, CancellationToken.None, log.Add).Dispose();
        }
        var pixels = (float[])Real.Pixels.Clone();
        pixels[^1] = 1 - pixels[^1];   // one pixel of the last image
        var changed = new ImageDataset(pixels, Real.Labels, Real.Shape, Real.ClassNames);

        Describe(Real, 3, false);
        Describe(changed, 3, false);
        Describe(changed, 4, false);
        Describe(changed, 4, true);
        Describe(changed, 4, true);

        Assert.Equal(new[] { true, true, true, true, false }, log.Select(line => line.Contains("fitted")).ToArray());
        // Mirrored: each descriptor is the mean of the image's and its mirror's.
        using var images = changed.ToTensor(CPU);
        using var dictionary = PatchDictionary.Learn(images, seed: 4, CancellationToken.None);
        using var expected = (dictionary.Describe(images, CancellationToken.None) + dictionary.Describe(images.flip(3), CancellationToken.None)) / 2;
        using var mirrored = cache.Describe(changed, images, true, 4, CancellationToken.None, log.Add);
        Assert.True(mirrored.allclose(expected, rtol: 1e-5, atol: 1e-6));
        cache.Clear();
    }

    [Fact]
    public void CancellingWhileFittingLeavesNothingCached()
    {
        var cache = new PatchDescriptionCache();
        var log = new List<string>();
        using var images = Real.ToTensor(CPU);
        Assert.ThrowsAny<OperationCanceledException>(() => cache.Describe(Real, images, false, 3, new CancellationToken(canceled: true), log.Add));
        cache.Describe(Real, images, false, 3, CancellationToken.None, log.Add).Dispose();
        Assert.Contains("fitted", Assert.Single(log));
        cache.Clear();
    }

    [Fact]
    public void ImagesThatAreNotTheRealOnesFirstAreRefused()
    {
        var cache = new PatchDescriptionCache();
        using var fewer = Real.ToTensor(CPU).narrow(0, 0, 59);
        using var flat = Real.ToTensor(CPU).flatten(1);
        foreach (var images in new[] { fewer, flat })
        {
            var error = Assert.Throws<ArgumentException>(() => cache.Describe(Real, images, false, 3, CancellationToken.None, _ => { }));
            Assert.Equal("images", error.ParamName);
            Assert.Contains("60 real images of", error.Message);
        }
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
