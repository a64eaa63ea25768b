using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models.Diffusion;

/// <summary>
/// The DDPM/ADM-style U-Net: a stem convolution, resolution levels of residual blocks (GroupNorm, SiLU, the
/// time+class embedding added between the two convolutions), self-attention at the lowest resolutions, skip
/// connections from each down block to its up block, and nearest-neighbour upsampling.
/// </summary>
public sealed class UNet : DenoiserNetwork
{
    private readonly int _timeFeatures;
    private readonly Sequential timeMlp;
    private readonly Embedding classEmbedding;
    private readonly Convolution stem;
    private readonly ModuleList<nn.Module<Tensor, Tensor, Tensor>> down;
    private readonly ModuleList<nn.Module<Tensor, Tensor, Tensor>> middle;
    private readonly ModuleList<nn.Module<Tensor, Tensor, Tensor>> up;
    private readonly GroupNormalization outNorm;
    private readonly Convolution outConv;
    private readonly List<string> _upKinds = new();

    /// <summary>Builds a U-Net.</summary>
    /// <param name="channels">Image channels.</param>
    /// <param name="classes">Number of classes (a null class is added).</param>
    /// <param name="baseChannels">Channels at full resolution.</param>
    /// <param name="multipliers">Channel multiplier per resolution level; each level after the first halves the resolution.</param>
    /// <param name="blocksPerLevel">Residual blocks per level.</param>
    /// <param name="attentionLevels">Levels (0 = full resolution) with self-attention after each block.</param>
    public UNet(int channels, int classes, int baseChannels, int[] multipliers, int blocksPerLevel, int[] attentionLevels) : base(nameof(UNet), classes)
    {
        // At least 64 sinusoidal features whatever the width: with 8 (4 frequencies) the Tiny net could not tell
        // noise levels apart and sampled speckle with every sampler.
        _timeFeatures = Math.Max(64, baseChannels);
        int embed = 4 * baseChannels;
        timeMlp = nn.Sequential(nn.Linear(_timeFeatures, embed), nn.SiLU(), nn.Linear(embed, embed));
        classEmbedding = nn.Embedding(classes + 1, embed);
        stem = new Convolution(channels, baseChannels, 3, padding: 1);

        var downBlocks = new List<nn.Module<Tensor, Tensor, Tensor>>();
        var skipChannels = new Stack<int>();
        skipChannels.Push(baseChannels);
        int current = baseChannels;
        for (int level = 0; level < multipliers.Length; level++)
        {
            int width = baseChannels * multipliers[level];
            for (int b = 0; b < blocksPerLevel; b++)
            {
                downBlocks.Add(new ResidualBlock(current, width, embed, attentionLevels.Contains(level)));
                current = width;
                skipChannels.Push(current);
            }
            if (level + 1 < multipliers.Length)
            {
                downBlocks.Add(new Downsample(current));
                skipChannels.Push(current);
            }
        }
        down = nn.ModuleList(downBlocks.ToArray());
        middle = nn.ModuleList<nn.Module<Tensor, Tensor, Tensor>>(new ResidualBlock(current, current, embed, attention: true), new ResidualBlock(current, current, embed, attention: false));

        var upBlocks = new List<nn.Module<Tensor, Tensor, Tensor>>();
        for (int level = multipliers.Length - 1; level >= 0; level--)
        {
            int width = baseChannels * multipliers[level];
            for (int b = 0; b < blocksPerLevel + 1; b++)
            {
                upBlocks.Add(new ResidualBlock(current + skipChannels.Pop(), width, embed, attentionLevels.Contains(level)));
                _upKinds.Add("res");
                current = width;
            }
            if (level > 0)
            {
                upBlocks.Add(new Upsample(current));
                _upKinds.Add("up");
            }
        }
        up = nn.ModuleList(upBlocks.ToArray());
        outNorm = Norm(current);
        outConv = new Convolution(current, channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>The U-Net of a preset size. Small: 32 channels, levels (1, 2, 2), 2 blocks, attention at the lowest level (about 4M parameters).</summary>
    public static UNet ForSize(DenoiserSpec spec) => spec.Size switch
    {
        // Attention only at the lowest level (7x7 at 28x28): at 14x14 it cost ~55 ms per layer per step on 2 CPU cores.
        DenoiserSize.Tiny => new UNet(spec.Channels, spec.Classes, 8, new[] { 1, 2, 2 }, 1, new[] { 2 }),
        DenoiserSize.Small => new UNet(spec.Channels, spec.Classes, 32, new[] { 1, 2, 2 }, 2, new[] { 2 }),
        DenoiserSize.Large => new UNet(spec.Channels, spec.Classes, 64, new[] { 1, 2, 2, 2 }, 2, new[] { 1, 2 }),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), $"Unknown size {spec.Size}."),
    };

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor timesteps, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var embedding = timeMlp.forward(TimestepEmbedding(timesteps, _timeFeatures).to(x.dtype)) + classEmbedding.forward(labels);
        var h = stem.forward(x);
        var skips = new Stack<Tensor>();
        skips.Push(h);
        for (int i = 0; i < down.Count; i++)
        {
            h = down[i].forward(h, embedding);
            skips.Push(h);
        }
        foreach (var block in middle) h = block.forward(h, embedding);
        for (int i = 0; i < up.Count; i++)
        {
            if (_upKinds[i] != "res")
            {
                h = up[i].forward(h, embedding);
                continue;
            }
            var skip = skips.Pop();
            // Odd sizes round up on the way down (7 -> 4), so doubling can overshoot: match the skip's size.
            if (h.shape[2] != skip.shape[2] || h.shape[3] != skip.shape[3])
                h = nn.functional.interpolate(h, size: new[] { skip.shape[2], skip.shape[3] }, mode: InterpolationMode.Nearest);
            h = up[i].forward(cat(new[] { h, skip }, 1), embedding);
        }
        return outConv.forward(nn.functional.silu(outNorm.forward(h))).MoveToOuterDisposeScope();
    }

    /// <summary>GN-SiLU-conv, + embedding, GN-SiLU-conv, residual; then optional self-attention.</summary>
    private sealed class ResidualBlock : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly GroupNormalization norm1, norm2;
        private readonly Convolution conv1, conv2;
        private readonly Linear embedProjection;
        private readonly Convolution? skip;
        private readonly SelfAttention2d? attention;

        public ResidualBlock(int input, int output, int embed, bool attention) : base(nameof(ResidualBlock))
        {
            norm1 = Norm(input);
            conv1 = new Convolution(input, output, 3, padding: 1);
            embedProjection = nn.Linear(embed, output);
            norm2 = Norm(output);
            conv2 = new Convolution(output, output, 3, padding: 1);
            skip = input == output ? null : new Convolution(input, output, 1);
            this.attention = attention ? new SelfAttention2d(output) : null;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor embedding)
        {
            var h = conv1.forward(nn.functional.silu(norm1.forward(x)));
            h = h + embedProjection.forward(nn.functional.silu(embedding)).unsqueeze(-1).unsqueeze(-1);
            h = conv2.forward(nn.functional.silu(norm2.forward(h)));
            h = h + (skip is null ? x : skip.forward(x));
            return attention is null ? h : attention.forward(h);
        }
    }

    private sealed class Downsample : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Convolution conv;
        public Downsample(int channels) : base(nameof(Downsample))
        {
            conv = new Convolution(channels, channels, 3, stride: 2, padding: 1);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x, Tensor embedding) => conv.forward(x);
    }

    private sealed class Upsample : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Convolution conv;
        public Upsample(int channels) : base(nameof(Upsample))
        {
            conv = new Convolution(channels, channels, 3, padding: 1);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x, Tensor embedding) =>
            conv.forward(nn.functional.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest));
    }
}

/// <summary>Multi-head self-attention over the pixels of a feature map, with GroupNorm and a residual connection.</summary>
internal sealed class SelfAttention2d : nn.Module<Tensor, Tensor>
{
    private readonly GroupNormalization norm;
    private readonly Convolution qkv, projection;
    private readonly int _heads;

    public SelfAttention2d(int channels, int heads = 4) : base(nameof(SelfAttention2d))
    {
        _heads = channels % heads == 0 ? heads : 1;
        norm = DenoiserNetwork.Norm(channels);
        qkv = new Convolution(channels, 3 * channels, 1);
        projection = new Convolution(channels, channels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        // [N, 3C, H, W] -> 3 x [N, heads, HW, C/heads]
        var parts = qkv.forward(norm.forward(x)).reshape(n, 3, _heads, c / _heads, h * w).permute(1, 0, 2, 4, 3).unbind(0);
        var attended = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        var merged = attended.permute(0, 1, 3, 2).reshape(n, c, h, w);
        return x + projection.forward(merged);
    }
}
