using Microsoft.ML.Dpt.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Runtime;

/// <summary>
/// The oneDNN cap <see cref="TorchRuntime.EnsureLoaded"/> applies (the test assembly's initializer calls it, as the
/// package's own initializer does in an app).
/// </summary>
public class OneDnnInstructionSetTests
{
    [Fact]
    public void TheCapIsAvx2UnlessTheUserChoseOne()
    {
        TorchRuntime.EnsureLoaded();
        string? chosen = Environment.GetEnvironmentVariable(OneDnnInstructionSet.Variable);
        Assert.Equal(string.IsNullOrEmpty(chosen) ? OneDnnInstructionSet.Cap : chosen, OneDnnInstructionSet.Prepare());
        Assert.Contains(OneDnnInstructionSet.Variable, OneDnnInstructionSet.Describe(OneDnnInstructionSet.Prepare()));
    }

    [Fact]
    public void ConvolutionInputGradientsDoNotDependOnWhatFreedMemoryHeld()
    {
        // With AVX-512 kernels, libtorch's CPU convolution backward read memory it never wrote while computing the
        // input gradient: after NaN-filled tensors were freed, NaN in the input gradient in 8 of 10 trials on the
        // project's machine; after finite ones, gradients that changed from trial to trial.
        if (OneDnnInstructionSet.Prepare() != OneDnnInstructionSet.Cap) return;   // the user lifted the cap
        Tensor? first = null;
        for (int trial = 0; trial < 10; trial++)
        {
            using var scope = NewDisposeScope();
            float leftover = trial % 2 == 0 ? float.NaN : 1e6f * (trial + 1);
            for (int i = 0; i < 20; i++) full(1L << (10 + i % 14), leftover).Dispose();
            var generator = new Generator(7);
            var convolution = nn.Conv2d(8, 8, 3, padding: 1);
            using (no_grad())
            {
                convolution.weight!.copy_(randn(convolution.weight.shape, generator: generator));
                convolution.bias!.zero_();
            }
            var input = randn(new long[] { 64, 8, 28, 28 }, generator: generator).requires_grad_(true);
            var output = convolution.forward(input);
            (output * randn(output.shape, generator: generator)).sum().backward();
            var gradient = input.grad!;
            Assert.False(gradient.isnan().any().item<bool>(), $"NaN in the input gradient, trial {trial}");
            if (first is null) first = gradient.detach().clone().MoveToOuterDisposeScope();
            else Assert.True(gradient.eq(first).all().item<bool>(), $"trial {trial}'s input gradient differs from trial 0's");
        }
        first?.Dispose();
    }
}
