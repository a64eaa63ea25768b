using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Dpt.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Networks;

public class ConvolutionTests
{
    public ConvolutionTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void InitialisesAndComputesAsNnConv2dWithTheSameParameterNames()
    {
        random.manual_seed(5);
        using var expected = nn.Conv2d(3, 5, 3, stride: 2, padding: 1);
        random.manual_seed(5);
        using var actual = new Convolution(3, 5, 3, stride: 2, padding: 1);
        Assert.Equal(new[] { "weight", "bias" }, actual.named_parameters().Select(p => p.name));
        Assert.True(actual.named_parameters().First().parameter.eq(expected.weight!).all().item<bool>());
        using var x = randn(4, 3, 9, 9);
        using var a = actual.forward(x);
        using var e = expected.forward(x);
        Assert.Equal(e.shape, a.shape);
        Assert.True(a.allclose(e, rtol: 1e-5, atol: 1e-6));
        using var noBias = new Convolution(3, 20, 1, bias: false);
        Assert.Equal(new[] { "weight" }, noBias.named_parameters().Select(p => p.name));
    }

    [Theory]
    [InlineData(32, 1)]
    [InlineData(32, 3)]
    [InlineData(8, 8)]
    [InlineData(16, 8)]
    [InlineData(32, 32)]
    [InlineData(24, 8)]
    [InlineData(40, 16)]
    public void OutputsAndInputGradientsMatchAFloat64ReferenceWhateverFreedMemoryHeld(int inputs, int outputs)
    {
        // Without the zero channels, oneDNN's AVX-512 kernels (what libtorch picks on such a CPU) gave input-gradient
        // errors of order 1 in 4-7 of 8 trials for every layer here with fewer than 16 outputs, and NaN after NaN
        // leftovers; and a 3x3 layer with more than 16 inputs but not a whole number of blocks of 16 (24, 40) gave
        // outputs off by about 0.5 here whatever the memory held, and NaN outputs where it had held NaN.
        for (int trial = 0; trial < 6; trial++)
        {
            using var scope = NewDisposeScope();
            FreedMemory.Leave(trial);
            var generator = new Generator(7);
            var convolution = new Convolution(inputs, outputs, 3, padding: 1);
            var x = randn(new long[] { 16, inputs, 28, 28 }, generator: generator).requires_grad_(true);
            var upstream = randn(new long[] { 16, outputs, 28, 28 }, generator: generator);
            var output = convolution.forward(x);
            (output * upstream).sum().backward();

            var parameters = convolution.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var x64 = x.detach().to(float64).requires_grad_(true);
            var output64 = nn.functional.conv2d(x64, parameters["weight"].detach().to(float64), parameters["bias"].detach().to(float64), padding: new long[] { 1, 1 });
            (output64 * upstream.to(float64)).sum().backward();
            double outputError = (output.detach().to(float64) - output64.detach()).abs().max().item<double>();
            double gradientError = (x.grad!.to(float64) - x64.grad!).abs().max().item<double>();
            Assert.True(outputError < 1e-3, $"trial {trial}: output off by up to {outputError}");
            Assert.True(gradientError < 1e-3, $"trial {trial}: input gradient off by up to {gradientError}");
        }
    }

    [Theory]
    [InlineData(24, 9, 32)]
    [InlineData(40, 9, 48)]
    [InlineData(24, 1, 24)]
    [InlineData(16, 9, 16)]
    [InlineData(8, 9, 8)]
    [InlineData(3, 9, 3)]
    [InlineData(64, 9, 64)]
    public void OnlySpatialKernelsOverOddBlocksOf16InputsComputeExtraInputs(int inputs, int kernelArea, int computed) =>
        Assert.Equal(computed, Convolution.ComputedInputs(inputs, kernelArea));

    [Fact]
    public void OnlyNetworksWithInputPaddedLayersAddTheArithmeticToTheirFingerprints()
    {
        // A checkpoint of such a network was fitted to a wrong forward pass before the padding and must not resume;
        // every other network computed right and keeps its checkpoints.
        using var tinyUNet = DenoiserNetwork.Create(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Tiny, 1, 28, 28, 10));
        using var smallUNet = DenoiserNetwork.Create(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Small, 1, 28, 28, 10));
        using var width24 = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.SmallCnn, 1, 10, 24));
        using var width32 = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.SmallCnn, 1, 10, 32));
        Assert.True(Convolution.PadsInputsIn(tinyUNet));
        Assert.False(Convolution.PadsInputsIn(smallUNet));
        Assert.True(Convolution.PadsInputsIn(width24));
        Assert.False(Convolution.PadsInputsIn(width32));

        static string Digest(nn.Module? network)
        {
            var fingerprint = new TrainingFingerprint("stage", new object(), 1);
            return (network is null ? fingerprint : fingerprint.AddConvolutionArithmetic(network)).Digest();
        }
        Assert.Equal(Digest(null), Digest(width32));
        Assert.NotEqual(Digest(null), Digest(width24));
        Assert.Equal(Digest(width24), Digest(tinyUNet));
    }
}
