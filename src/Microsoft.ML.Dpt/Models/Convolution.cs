using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// A 2-D convolution, as <c>nn.Conv2d</c> (same initialisation, same parameter names <c>weight</c> and <c>bias</c>, so
/// saved models load), that on the CPU computes layers with fewer than <see cref="ChannelBlock"/> output
/// channels as that many, the extra ones with zero weights, and spatial layers whose input channels are more than one
/// block of 16 but not a whole number of blocks with zero input channels up to the next block; it keeps the real ones.
/// </summary>
/// <remarks>
/// Why: the oneDNN in the libtorch that TorchSharp 0.107 ships has two CPU kernels of that kind that read memory they
/// never wrote. On CPUs with AVX-512 the backward pass of a layer with fewer than 16 outputs computes wrong input
/// gradients (errors of order 1 against a float64 reference for 32 → 1, 32 → 3, 16 → 8, 8 → 8, 4 → 4 and 1 → 8, NaN
/// when freed memory held NaN); with 16 or more they are exact. And the forward pass of a 3x3 layer with 20, 24, 28,
/// 40, 56, 72, 100 or 120 inputs (more than 16, not a multiple of 16) is wrong: outputs off by as much as they are
/// large against a float64 reference, whatever the memory held, and NaN where the unwritten padding of its last block
/// of inputs held NaN (the tiny U-Net's 24-channel joins; 1x1 layers and layers of up to 16 inputs are exact). The
/// zero channels cost a little arithmetic in the few layers that need them (a U-Net's last layer to 1 or 3 channels,
/// the tiny U-Net's 24-channel joins, a classifier narrower than 16) and keep the fast kernels for all the others.
/// </remarks>
internal sealed class Convolution : nn.Module<Tensor, Tensor>
{
    /// <summary>oneDNN's AVX-512 block of 16 floats: the fewest output channels computed, and the unit that a spatial
    /// layer's input channels are rounded up to.</summary>
    public const int ChannelBlock = 16;

    /// <summary>
    /// Names what the CPU computes here, for training fingerprints: checkpoints of a network with input-padded layers
    /// (<see cref="PadsInputsIn"/>) from before those layers were padded (2026-12-07) hold weights fitted to a wrong
    /// forward pass and must not be resumed.
    /// </summary>
    public const string Arithmetic = "zero channels up to 16 outputs and to whole blocks of 16 spatial inputs";

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
        long extraOutputs = Math.Max(0, ChannelBlock - outputs);
        long extraInputs = ExtraInputs;
        if (input.device_type != DeviceType.CPU || (extraOutputs == 0 && extraInputs == 0)) return Convolve(input, weight, bias);

        using var scope = NewDisposeScope();
        var (x, weights, biases) = (input, (Tensor)weight, (Tensor?)bias);
        if (extraInputs > 0)
        {
            x = cat(new[] { input, zeros(new[] { input.shape[0], extraInputs, input.shape[2], input.shape[3] }, input.dtype, input.device) }, 1);
            weights = cat(new[] { weights, zeros(new[] { outputs, extraInputs, weight.shape[2], weight.shape[3] }, weight.dtype, weight.device) }, 1);
        }
        if (extraOutputs > 0)
        {
            weights = cat(new[] { weights, zeros(new[] { extraOutputs, weights.shape[1], weight.shape[2], weight.shape[3] }, weight.dtype, weight.device) }, 0);
            biases = bias is null ? null : cat(new[] { bias, zeros(new[] { extraOutputs }, bias.dtype, bias.device) }, 0);
        }
        var result = Convolve(x, weights, biases);
        return (extraOutputs > 0 ? result.narrow(1, 0, outputs) : result).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Input channels computed for a layer with <paramref name="inputs"/> of them and a kernel of
    /// <paramref name="kernelArea"/> taps: a spatial kernel with more than one block of 16 that is not a whole number
    /// of blocks gets zero channels up to the next whole one; every other layer computes its own.
    /// </summary>
    internal static long ComputedInputs(long inputs, long kernelArea) =>
        kernelArea > 1 && inputs > ChannelBlock && inputs % ChannelBlock != 0
            ? (inputs + ChannelBlock - 1) / ChannelBlock * ChannelBlock
            : inputs;

    /// <summary>Whether <paramref name="network"/> has a layer whose input channels the CPU pads (the tiny U-Net's
    /// 24-channel joins, a classifier of width 24 or 40): the layers whose forward pass was wrong before.</summary>
    internal static bool PadsInputsIn(nn.Module network) =>
        network.modules().OfType<Convolution>().Any(layer => layer.PadsInputs);

    internal bool PadsInputs => ExtraInputs > 0;

    private long ExtraInputs => ComputedInputs(weight.shape[1], weight.shape[2] * weight.shape[3]) - weight.shape[1];

    private Tensor Convolve(Tensor input, Tensor weights, Tensor? biases) =>
        nn.functional.conv2d(input, weights, biases, strides: _strides, padding: _paddings);
}
