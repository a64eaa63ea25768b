using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models.Diffusion;

/// <summary>
/// Group normalisation (Wu and He, 2018) with a per-channel scale and shift, computed through <c>layer_norm</c> over
/// each group instead of libtorch's <c>group_norm</c> kernel.
/// </summary>
/// <remarks>
/// The CPU backward pass of <c>group_norm</c> in the libtorch that TorchSharp 0.107 ships reads memory it never wrote:
/// input gradients differed from run to run with the same inputs and came out NaN when freed memory had held NaN,
/// which stopped the diffusion model's training with a NaN loss. <c>layer_norm</c>'s backward is exact, and a group
/// is exactly a layer over a reshaped view. Parameters are named as in <c>nn.GroupNorm</c> (<c>weight</c>,
/// <c>bias</c>), and start as the identity.
/// </remarks>
internal sealed class GroupNormalization : nn.Module<Tensor, Tensor>
{
    private readonly int _groups;
    private readonly double _epsilon;
    private readonly Parameter weight;
    private readonly Parameter bias;

    public GroupNormalization(int groups, int channels, double epsilon = 1e-5) : base(nameof(GroupNormalization))
    {
        if (groups < 1 || channels % groups != 0)
            throw new ArgumentException($"GroupNormalization: {channels} channels cannot be split into {groups} equal groups.", nameof(groups));
        _groups = groups;
        _epsilon = epsilon;
        weight = nn.Parameter(ones(channels));
        bias = nn.Parameter(zeros(channels));
        RegisterComponents();
    }

    /// <summary>Normalises each (image, group) over its channels and pixels, then scales and shifts each channel.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var shape = input.shape;
        var grouped = input.reshape(shape[0], _groups, -1);
        var normalized = nn.functional.layer_norm(grouped, new[] { grouped.shape[2] }, eps: _epsilon).reshape(shape);
        var perChannel = new long[shape.Length];
        Array.Fill(perChannel, 1L);
        perChannel[1] = shape[1];
        return (normalized * weight.reshape(perChannel) + bias.reshape(perChannel)).MoveToOuterDisposeScope();
    }
}
