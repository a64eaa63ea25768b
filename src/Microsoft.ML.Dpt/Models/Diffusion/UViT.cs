using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models.Diffusion;

/// <summary>
/// U-ViT (Bao et al., CVPR 2023), the backbone DPT samples with: the image is cut into patches, the timestep and
/// the class become two extra tokens, a stack of pre-norm transformer blocks runs over all tokens, and each block
/// of the second half receives the output of its mirror block in the first half (a long skip: concatenate, then
/// a linear layer). A 3x3 convolution smooths the unpatchified output. Attention is TorchSharp's
/// <c>scaled_dot_product_attention</c>.
/// </summary>
public sealed class UViT : DenoiserNetwork
{
    private readonly int _dim, _patch, _channels, _gridH, _gridW;
    private readonly Convolution patchEmbedding;
    private readonly Sequential timeMlp;
    private readonly Embedding classEmbedding;
    private readonly Parameter positions;
    private readonly ModuleList<TransformerBlock> inBlocks, outBlocks;
    private readonly TransformerBlock midBlock;
    private readonly ModuleList<Linear> skipProjections;
    private readonly LayerNorm finalNorm;
    private readonly Linear toPatches;
    private readonly Convolution finalConv;

    /// <summary>Builds a U-ViT.</summary>
    /// <param name="channels">Image channels.</param>
    /// <param name="height">Image height (a multiple of <paramref name="patch"/>).</param>
    /// <param name="width">Image width (a multiple of <paramref name="patch"/>).</param>
    /// <param name="classes">Number of classes (a null class is added).</param>
    /// <param name="dim">Token width.</param>
    /// <param name="depth">Transformer blocks in each half (the whole has 2·depth + 1).</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="patch">Patch side in pixels.</param>
    public UViT(int channels, int height, int width, int classes, int dim, int depth, int heads, int patch) : base(nameof(UViT), classes)
    {
        if (height % patch != 0 || width % patch != 0)
            throw new ArgumentOutOfRangeException(nameof(patch), $"U-ViT needs image sides divisible by the patch size {patch}; got {width}x{height}.");
        _dim = dim;
        _patch = patch;
        _channels = channels;
        _gridH = height / patch;
        _gridW = width / patch;
        patchEmbedding = new Convolution(channels, dim, patch, stride: patch);
        timeMlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim));
        classEmbedding = nn.Embedding(classes + 1, dim);
        positions = nn.Parameter(randn(1, 2 + _gridH * _gridW, dim) * 0.02);
        inBlocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new TransformerBlock(dim, heads)).ToArray());
        midBlock = new TransformerBlock(dim, heads);
        outBlocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new TransformerBlock(dim, heads)).ToArray());
        skipProjections = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => nn.Linear(2 * dim, dim)).ToArray());
        finalNorm = nn.LayerNorm(dim);
        toPatches = nn.Linear(dim, patch * patch * channels);
        finalConv = new Convolution(channels, channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>The U-ViT of a preset size: patch 2 where the sides allow it, else 4.</summary>
    public static UViT ForSize(DenoiserSpec spec)
    {
        int patch = spec.Height % 2 == 0 && spec.Width % 2 == 0 && spec.Height * spec.Width <= 32 * 32 ? 2 : 4;
        return spec.Size switch
        {
            DenoiserSize.Tiny => new UViT(spec.Channels, spec.Height, spec.Width, spec.Classes, 16, 1, 2, patch),
            DenoiserSize.Small => new UViT(spec.Channels, spec.Height, spec.Width, spec.Classes, 192, 4, 4, patch),
            DenoiserSize.Large => new UViT(spec.Channels, spec.Height, spec.Width, spec.Classes, 384, 6, 6, patch),
            _ => throw new ArgumentOutOfRangeException(nameof(spec), $"Unknown size {spec.Size}."),
        };
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor timesteps, Tensor labels)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        var patches = patchEmbedding.forward(x).flatten(2).transpose(1, 2);                  // [N, L, D]
        var time = timeMlp.forward(TimestepEmbedding(timesteps, _dim).to(x.dtype)).unsqueeze(1); // [N, 1, D]
        var label = classEmbedding.forward(labels).unsqueeze(1);                               // [N, 1, D]
        var h = cat(new[] { time, label, patches }, 1) + positions;
        var skips = new Stack<Tensor>();
        foreach (var block in inBlocks)
        {
            h = block.forward(h);
            skips.Push(h);
        }
        h = midBlock.forward(h);
        for (int i = 0; i < outBlocks.Count; i++)
            h = outBlocks[i].forward(skipProjections[i].forward(cat(new[] { h, skips.Pop() }, -1)));
        var tokens = toPatches.forward(finalNorm.forward(h)).narrow(1, 2, _gridH * _gridW);   // drop time and class tokens
        // [N, gh*gw, p*p*C] -> [N, C, gh*p, gw*p]
        var image = tokens.reshape(n, _gridH, _gridW, _patch, _patch, _channels).permute(0, 5, 1, 3, 2, 4)
            .reshape(n, _channels, _gridH * _patch, _gridW * _patch);
        return finalConv.forward(image).MoveToOuterDisposeScope();
    }

    /// <summary>Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x)).</summary>
    internal sealed class TransformerBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm1, norm2;
        private readonly Linear qkv, projection;
        private readonly Sequential mlp;
        private readonly int _heads;

        public TransformerBlock(int dim, int heads) : base(nameof(TransformerBlock))
        {
            _heads = heads;
            norm1 = nn.LayerNorm(dim);
            qkv = nn.Linear(dim, 3 * dim);
            projection = nn.Linear(dim, dim);
            norm2 = nn.LayerNorm(dim);
            mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long n = x.shape[0], length = x.shape[1], dim = x.shape[2];
            var parts = qkv.forward(norm1.forward(x)).reshape(n, length, 3, _heads, dim / _heads).permute(2, 0, 3, 1, 4).unbind(0);
            var attended = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
            x = x + projection.forward(attended.transpose(1, 2).reshape(n, length, dim));
            return x + mlp.forward(norm2.forward(x));
        }
    }
}
