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
}
