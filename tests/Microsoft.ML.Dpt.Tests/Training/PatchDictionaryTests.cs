using Microsoft.ML.Dpt.Models;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class PatchDictionaryTests
{
    [Fact]
    public void TheSameImagesAndSeedGiveTheSameDescriptorsInEveryBatch()
    {
        var train = TestData.FashionMnistSubset.Train;
        using var images = train.Select(Enumerable.Range(0, 300).ToArray()).ToTensor(CPU);
        using var some = images.narrow(0, 0, 40);   // 40 x 24 x 24 patches to fit to: enough for 400 shapes, and quick
        using var first = PatchDictionary.Learn(some, seed: 5, CancellationToken.None);
        using var again = PatchDictionary.Learn(some, seed: 5, CancellationToken.None);
        using var descriptors = first.Describe(images, CancellationToken.None);

        Assert.Equal(new long[] { 300, PatchDictionary.Length }, descriptors.shape);
        Assert.True(descriptors.isfinite().all().item<bool>());
        Assert.True(descriptors.min().item<float>() >= 0);   // square roots of averaged non-negative activations
        using var described = again.Describe(images, CancellationToken.None);
        Assert.True(descriptors.eq(described).all().item<bool>(), $"largest difference {(descriptors - described).abs().max().item<float>()}");
        // An image past the first batch of 256 gets the descriptor it gets alone.
        Assert.True(first.Describe(images.narrow(0, 299, 1), CancellationToken.None).allclose(descriptors.narrow(0, 299, 1), rtol: 1e-4, atol: 1e-5));
        // Another seed draws other patches and fits another dictionary.
        using var other = PatchDictionary.Learn(some, seed: 6, CancellationToken.None);
        Assert.False(other.Describe(some, CancellationToken.None).allclose(descriptors.narrow(0, 0, 40)));
    }

    [Fact]
    public void ImagesOfOneClassAreEachOthersNearestNeighboursFarMoreOftenThanByChance()
    {
        // 100 images of each class of the embedded subset: by cosine similarity of the centred descriptors, how often
        // is an image's nearest other image of its class? Chance is about 10 %; shapes of 5 x 5 pixels and where they
        // sit on a 2 x 2 grid tell a trouser from a sandal.
        var train = TestData.SmallTrain(100);
        using var images = train.ToTensor(CPU);
        using var everyFifth = images.index_select(0, arange(0, train.Count, 5));   // the dictionary is fitted to 200 of them, to keep the test quick
        using var dictionary = PatchDictionary.Learn(everyFifth, seed: 1, CancellationToken.None);
        using var descriptors = dictionary.Describe(images, CancellationToken.None);
        var rows = nn.functional.normalize(descriptors - descriptors.mean(new long[] { 0 }, keepdim: true), dim: 1);
        var similarity = rows.matmul(rows.t()) - 2 * eye(train.Count);
        var nearest = similarity.argmax(1).data<long>().ToArray();
        int same = Enumerable.Range(0, train.Count).Count(i => train.Labels[nearest[i]] == train.Labels[i]);
        Assert.True(same >= 0.6 * train.Count, $"{same} of {train.Count} nearest neighbours share their class");
    }

    [Fact]
    public void ImagesOfTheWrongShapeAreRefusedWithTheirShape()
    {
        var flat = Assert.Throws<ArgumentException>(() => PatchDictionary.Learn(zeros(2, 28, 28), 1, CancellationToken.None));
        Assert.Contains("[N, C, H, W] of at least 5 × 5 pixels; got [2, 28, 28]", flat.Message);
        var tiny = Assert.Throws<ArgumentException>(() => PatchDictionary.Learn(zeros(2, 1, 4, 28), 1, CancellationToken.None));
        Assert.Contains("got [2, 1, 4, 28]", tiny.Message);
    }

    [Fact]
    public void CancellingStopsLearning()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => PatchDictionary.Learn(rand(20, 1, 28, 28), 1, cancelled.Token));
    }
}
