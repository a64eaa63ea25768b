using Microsoft.ML.Dpt.Models;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class ClassifierNetworkTests
{
    [Fact]
    public void WideResNet28x2HasTheStandardSizeAndShapes()
    {
        using var network = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.WideResNet28x2, 3, 10, 2));
        long parameters = network.parameters().Sum(p => p.numel());
        Assert.InRange(parameters, 1_400_000, 1_550_000);   // WRN-28-2: 1.47M in the FixMatch papers
        network.eval();
        using var images = rand(2, 3, 32, 32);
        using var logits = network.forward(images);
        using var features = network.Features(images);
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        Assert.Equal(new long[] { 2, 128 }, features.shape);
        Assert.Equal(128, network.FeatureLength);
    }

    [Fact]
    public void SmallCnnFitsGrayscaleAndColourImages()
    {
        using var gray = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.SmallCnn, 1, 10, 32));
        using var colour = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.SmallCnn, 3, 4, 8));
        gray.eval();
        colour.eval();
        Assert.Equal(new long[] { 3, 10 }, gray.forward(rand(3, 1, 28, 28)).shape);
        Assert.Equal(new long[] { 3, 4 }, colour.forward(rand(3, 3, 32, 32)).shape);
        Assert.InRange(gray.parameters().Sum(p => p.numel()), 250_000, 320_000);
    }

    [Theory]
    [InlineData(ClassifierNetwork.SmallCnn, 1, 28, 8)]
    [InlineData(ClassifierNetwork.WideResNet28x2, 3, 32, 1)]
    public void GridFeaturesArePooledFeaturesFollowedByTheCellAveragesOfTheLastMap(ClassifierNetwork kind, int channels, int side, int width)
    {
        manual_seed(3);
        using var network = ImageClassifierNetwork.Create(new NetworkSpec(kind, channels, 10, width));
        network.eval();
        using var images = rand(2, channels, side, side);
        using var pooled = network.Features(images);
        int length = network.FeatureLength;
        Assert.True(network.HasFeatureMap);
        Assert.Equal(pooled.data<float>().ToArray(), network.GridFeatures(images, 0).data<float>().ToArray());

        // Grid 1: the one cell is the whole map, so the cell average repeats the pooled features.
        using var one = network.GridFeatures(images, 1);
        Assert.Equal(new long[] { 2, 2 * length }, one.shape);
        Assert.True(one.narrow(1, length, length).allclose(pooled, rtol: 1e-4, atol: 1e-5));

        // Grid 2 on an even map (7 x 7 rounds up its cells, so only the WRN's 8 x 8 map splits evenly): the four
        // cells' mean is the pooled feature; the cells differ from it, so they say where.
        using var two = network.GridFeatures(images, 2);
        Assert.Equal(new long[] { 2, 5 * length }, two.shape);
        Assert.Equal(5 * length, network.GridFeatureLength(2));
        Assert.Equal(pooled.data<float>().ToArray(), two.narrow(1, 0, length).contiguous().data<float>().ToArray());
        using var cells = two.narrow(1, length, 4 * length).reshape(2, length, 4);
        if (kind == ClassifierNetwork.WideResNet28x2)
            Assert.True(cells.mean(new long[] { 2 }).allclose(pooled, rtol: 1e-4, atol: 1e-5));
        Assert.True((cells - pooled.unsqueeze(2)).abs().max().item<float>() > 1e-3);
    }
}
