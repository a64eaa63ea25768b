using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Diffusion;

public class DenoiserNetworkTests
{
    [Theory]
    [InlineData(DenoiserBackbone.UNet, 1, 28, 28)]
    [InlineData(DenoiserBackbone.UNet, 3, 32, 32)]
    [InlineData(DenoiserBackbone.UViT, 1, 28, 28)]
    [InlineData(DenoiserBackbone.UViT, 3, 32, 32)]
    public void OutputHasTheInputShapeAndTheNullClassIsAccepted(DenoiserBackbone backbone, int channels, int height, int width)
    {
        using var network = DenoiserNetwork.Create(new DenoiserSpec(backbone, DenoiserSize.Tiny, channels, height, width, Classes: 10));
        using var x = randn(3, channels, height, width);
        using var t = tensor(new float[] { 0, 500, 999 });
        using var labels = tensor(new long[] { 0, 9, 10 });   // 10 = the null class
        using var output = network.forward(x, t, labels);
        Assert.Equal(x.shape, output.shape);
        Assert.True(output.isfinite().all().item<bool>());
        using var outOfRange = tensor(new long[] { 0, 1, 11 });
        Assert.ThrowsAny<Exception>(() => network.forward(x, t, outOfRange));
    }

    [Fact]
    public void TheSmallUNetHasAFewMillionParameters()
    {
        using var network = DenoiserNetwork.Create(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Small, 1, 28, 28, 10));
        long count = network.parameters().Sum(p => p.numel());
        Assert.InRange(count, 1_000_000, 10_000_000);
    }

    [Fact]
    public void ConditioningChangesTheOutput()
    {
        using var network = DenoiserNetwork.Create(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Tiny, 1, 28, 28, 10));
        using var x = randn(1, 1, 28, 28);
        using var t = tensor(new float[] { 300 });
        using var a = network.forward(x, t, tensor(new long[] { 2 }));
        using var b = network.forward(x, t, tensor(new long[] { 10 }));
        Assert.True((a - b).abs().max().item<float>() > 0);
    }

    [Theory]
    [InlineData(PredictionType.Epsilon)]
    [InlineData(PredictionType.Velocity)]
    public void ATinyModelsTrainingLossFallsOnRealImages(PredictionType prediction)
    {
        var data = TestData.SmallTrain(30);
        var options = new DiffusionTrainerOptions
        {
            Size = DenoiserSize.Tiny, NumberOfSteps = 150, BatchSize = 32, LearningRate = 2e-3, WarmupSteps = 10, LogInterval = 15,
            Prediction = prediction, Device = Microsoft.ML.Dpt.Runtime.DptDevice.Cpu,
        };
        var reports = new List<TrainingProgress>();
        var loop = new DiffusionTrainingLoop(options, CPU, reports.Add, _ => { });
        var model = loop.Train(data, new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Tiny, 1, 28, 28, 10), seed: 1);

        Assert.Equal(10, reports.Count);
        double first = reports[0].Loss, last = reports.TakeLast(3).Average(r => r.Loss);
        Assert.True(last < 0.6 * first, $"loss fell from {first:F4} only to {last:F4}");
        Assert.Equal(prediction, model.Prediction);
    }
}
