using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A 2-D convolution, as <c>nn.Conv2d</c> (same initialisation, same parameter names <c>weight</c> and <c>bias</c>, so
/// saved models load), that computes layers with fewer than <see cref="MinimumComputedOutputs"/> output channels as
/// that many, the extra ones with zero weights, and keeps the real ones.
/// </summary>
/// <remarks>
/// Why: on CPUs with AVX-512, the convolution backward pass of oneDNN in the libtorch that TorchSharp 0.107 ships
/// computes wrong input gradients for layers with fewer than 16 output channels (errors of order 1 against a float64
/// reference for 32 → 1, 32 → 3, 16 → 8, 8 → 8, 4 → 4 and 1 → 8, NaN when freed memory held NaN); with 16 or more
/// they are exact. The zero channels cost a little arithmetic in the few layers that need them (a U-Net's last layer
/// to 1 or 3 channels, a classifier narrower than 16) and keep the fast kernels for all the others.
/// </remarks>
internal sealed class Convolution : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels computed at the least: oneDNN's AVX-512 block of 16 floats.</summary>
    public const int MinimumComputedOutputs = 16;

    private readonly long[] _strides, _paddings;
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Convolution(long inputChannels, long outputChannels, long kernelSize, long stride = 1, long padding = 0, bool bias = true)
        : base(nameof(Convolution))
    {
        _strides = new[] { stride, stride };
        _paddings = new[] { padding, padding };
        // nn.Conv2d's own initialisation (Kaiming-uniform weights, uniform bias), drawn from the same generator.
        using (var reference = nn.Conv2d(inputChannels, outputChannels, kernelSize, stride: stride, padding: padding, bias: bias))
        using (no_grad())
        {
            weight = nn.Parameter(reference.weight!.detach().clone());
            this.bias = bias ? nn.Parameter(reference.bias!.detach().clone()) : null;
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        long outputs = weight.shape[0];
        if (outputs >= MinimumComputedOutputs || input.device_type != DeviceType.CPU) return Convolve(input, weight, bias);

        using var scope = NewDisposeScope();
        long extra = MinimumComputedOutputs - outputs;
        var extraWeights = zeros(new[] { extra, weight.shape[1], weight.shape[2], weight.shape[3] }, weight.dtype, weight.device);
        var paddedBias = bias is null ? null : cat(new[] { bias, zeros(new[] { extra }, bias.dtype, bias.device) }, 0);
        return Convolve(input, cat(new[] { weight, extraWeights }, 0), paddedBias).narrow(1, 0, outputs).MoveToOuterDisposeScope();
    }

    private Tensor Convolve(Tensor input, Tensor weights, Tensor? biases) =>
        nn.functional.conv2d(input, weights, biases, strides: _strides, padding: _paddings);
}
