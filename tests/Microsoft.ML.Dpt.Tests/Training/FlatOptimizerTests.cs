using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Training.Optimization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class FlatOptimizerTests
{
    public FlatOptimizerTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A small net with several parameter tensors of different shapes, and BatchNorm buffers.</summary>
    private static nn.Module<Tensor, Tensor> Net(int seed)
    {
        random.manual_seed(seed);
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3));
    }

    private static Tensor Loss(nn.Module<Tensor, Tensor> net, int step)
    {
        random.manual_seed(100 + step);
        var x = randn(5, 1, 6, 6);
        var y = randint(3, new long[] { 5 });
        return nn.functional.cross_entropy(net.forward(x), y);
    }

    private static float[] Weights(nn.Module module) =>
        module.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();

    [Fact]
    public void FlatParametersAliasTheModuleAndReceiveItsGradients()
    {
        using var net = Net(1);
        var before = Weights(net);
        var flat = FlatParameters.Of(net);
        Assert.Equal(before, flat.Values.data<float>().ToArray());   // values kept, in the module's order
        Assert.Same(flat, FlatParameters.Of(net));                     // one layout per module

        flat.AttachGradients();
        Loss(net, 0).backward();
        var gradients = net.parameters().SelectMany(p => p.grad!.data<float>().ToArray()).ToArray();
        Assert.Equal(gradients, flat.Gradients.data<float>().ToArray());
        Assert.Contains(gradients, g => g != 0);

        using (no_grad()) flat.Values.add_(1);
        Assert.Equal(before.Select(v => v + 1), Weights(net));   // the module's parameters are the buffer
    }

    [Fact]
    public void AModuleMovedAwayAndBackIsFlattenedAgain()
    {
        using var net = Net(1);
        var first = FlatParameters.Of(net);
        net.to(ScalarType.Float64).to(ScalarType.Float32);   // new storage for every parameter
        var second = FlatParameters.Of(net);
        Assert.NotSame(first, second);
        using (no_grad()) second.Values.zero_();
        Assert.All(Weights(net), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void FlatAdamWTakesTheSameStepsAsTorchSharpsAdamW()
    {
        using var reference = Net(2);
        using var flat = Net(2);
        using var adamW = optim.AdamW(reference.parameters(), 0.01, weight_decay: 0.05);
        var flatAdamW = new FlatAdamW(flat, 0.01, 0.05);
        for (int step = 0; step < 5; step++)
        {
            adamW.zero_grad();
            Loss(reference, step).backward();
            adamW.step();
            flatAdamW.ZeroGrad();
            Loss(flat, step).backward();
            flatAdamW.Step();
        }
        Assert.Equal(Weights(reference), Weights(flat));   // same arithmetic in the same order: equal bit for bit
        Assert.Equal(5, flatAdamW.Steps);
    }

    [Fact]
    public void FlatSgdTakesTheSameStepsAsTorchSharpsNesterovSgd()
    {
        using var reference = Net(3);
        using var flat = Net(3);
        using var sgd = optim.SGD(reference.parameters(), 0.05, 0.9, weight_decay: 5e-4, nesterov: true);
        var flatSgd = new FlatSgd(flat, 0.05, 0.9, 5e-4, nesterov: true);
        for (int step = 0; step < 5; step++)
        {
            sgd.zero_grad();
            Loss(reference, step).backward();
            sgd.step();
            flatSgd.ZeroGrad();
            Loss(flat, step).backward();
            flatSgd.Step();
        }
        var expected = Weights(reference);
        var actual = Weights(flat);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 6);
    }

    [Fact]
    public void ClippingScalesTheGlobalGradientNormDownToTheLimitAndLeavesSmallerNormsAlone()
    {
        using var net = Net(4);
        var optimizer = new FlatAdamW(net, 0.01);
        var gradients = FlatParameters.Of(net).Gradients;
        using (no_grad()) gradients.copy_(arange(gradients.numel(), dtype: ScalarType.Float32) / 100);
        double norm = gradients.norm().item<float>();
        Assert.True(norm > 1);
        optimizer.ClipGradientNorm(1.0);
        Assert.Equal(1.0, gradients.norm().item<float>(), 4);
        optimizer.ClipGradientNorm(10.0);
        Assert.Equal(1.0, gradients.norm().item<float>(), 4);
    }

    [Fact]
    public void StateSavedAndLoadedContinuesExactly()
    {
        using var a = Net(5);
        using var b = Net(5);
        var first = new FlatAdamW(a, 0.01);
        var second = new FlatAdamW(b, 0.01);
        for (int step = 0; step < 3; step++)
        {
            first.ZeroGrad(); Loss(a, step).backward(); first.Step();
            second.ZeroGrad(); Loss(b, step).backward(); second.Step();
        }
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) first.SaveState(writer);
        using var c = Net(6);
        using (no_grad()) FlatParameters.Of(c).Values.copy_(FlatParameters.Of(a).Values);
        var restored = new FlatAdamW(c, 0.01);
        stream.Position = 0;
        using (var reader = new BinaryReader(stream)) restored.LoadState(reader);
        Assert.Equal(3, restored.Steps);
        second.ZeroGrad(); Loss(b, 3).backward(); second.Step();
        restored.ZeroGrad(); Loss(c, 3).backward(); restored.Step();
        Assert.Equal(Weights(b), Weights(c));
    }

    [Fact]
    public void FrozenParametersAndBadSettingsAreRefusedWithClearErrors()
    {
        using var net = Net(7);
        net.parameters().First().requires_grad = false;
        var frozen = Assert.Throws<ArgumentException>(() => new FlatSgd(net, 0.1, 0.9, 0, nesterov: true));
        Assert.Contains("trainable", frozen.Message);
        using var other = Net(8);
        Assert.Contains("learning rate", Assert.Throws<ArgumentOutOfRangeException>(() => new FlatAdamW(other, -1)).Message);
        Assert.Contains("Momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new FlatSgd(other, 0.1, 1.0, 0, nesterov: false)).Message);
    }

    [Fact]
    public void TheAverageFollowsTheModelThroughTheFlatBuffers()
    {
        using var model = Net(9);
        using var averageModel = Net(10);
        var average = new ExponentialMovingAverage(model, averageModel, 0.5);
        Assert.Equal(Weights(model), Weights(averageModel));   // starts at the model
        var start = Weights(model);
        using (no_grad()) FlatParameters.Of(model).Values.add_(1);
        average.Update();   // warmed-up decay min(0.5, 1/10) = 0.1
        var expected = start.Select(v => 0.1f * v + 0.9f * (v + 1)).ToArray();
        var actual = Weights(averageModel);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
        Assert.Throws<InvalidOperationException>(() => FlatParameters.Of(averageModel).Gradients);   // an average needs no gradient buffer
    }
}
