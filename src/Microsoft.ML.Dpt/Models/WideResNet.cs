using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Models;

/// <summary>
/// Wide ResNet (Zagoruyko and Komodakis, 2016) in the pre-activation form used by FixMatch and USB:
/// WRN-28-2 has 1.47M parameters; leaky ReLU (0.1) as there. BatchNorm keeps PyTorch's default momentum (0.1):
/// USB's 0.001 suits its million-step runs, not budgets of a few thousand steps.
/// </summary>
public sealed class WideResNet : ImageClassifierNetwork
{
    private readonly Convolution stem;
    private readonly Sequential blocks;
    private readonly BatchNorm2d finalNorm;
    private readonly Linear classifier;

    /// <summary>Creates a WRN-<paramref name="depth"/>-<paramref name="widen"/>.</summary>
    public WideResNet(int channels, int classes, int depth = 28, int widen = 2) : base(nameof(WideResNet))
    {
        if ((depth - 4) % 6 != 0) throw new ArgumentOutOfRangeException(nameof(depth), $"WRN depth must be 6n+4; got {depth}.");
        int perStage = (depth - 4) / 6;
        int[] widths = { 16, 16 * widen, 32 * widen, 64 * widen };
        stem = new Convolution(channels, widths[0], 3, padding: 1, bias: false);
        var layers = new List<nn.Module<Tensor, Tensor>>();
        for (int stage = 0; stage < 3; stage++)
            for (int i = 0; i < perStage; i++)
                layers.Add(new WideBasicBlock(i == 0 ? widths[stage] : widths[stage + 1], widths[stage + 1], i == 0 && stage > 0 ? 2 : 1));
        blocks = nn.Sequential(layers);
        finalNorm = nn.BatchNorm2d(widths[3]);
        classifier = nn.Linear(widths[3], classes);
        FeatureLength = widths[3];
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int FeatureLength { get; }

    /// <inheritdoc/>
    protected internal override Tensor ExtractFeatures(Tensor images) => ExtractGridFeatures(images, 0);

    /// <inheritdoc/>
    public override bool HasFeatureMap => true;

    /// <inheritdoc/>
    protected internal override Tensor ExtractGridFeatures(Tensor images, int grid)
    {
        using var x = blocks.forward(stem.forward(images));
        using var a = nn.functional.leaky_relu(finalNorm.forward(x), 0.1);
        return PoolWithGrid(a, grid);
    }

    /// <inheritdoc/>
    public override Tensor Head(Tensor features) => classifier.forward(features);

    /// <summary>Pre-activation residual block: BN-act-conv twice; a 1x1 conv shortcut where the shape changes.</summary>
    private sealed class WideBasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly BatchNorm2d bn1, bn2;
        private readonly Convolution conv1, conv2;
        private readonly Convolution? shortcut;

        public WideBasicBlock(int input, int output, int stride) : base(nameof(WideBasicBlock))
        {
            bn1 = nn.BatchNorm2d(input);
            conv1 = new Convolution(input, output, 3, stride: stride, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(output);
            conv2 = new Convolution(output, output, 3, padding: 1, bias: false);
            shortcut = input == output && stride == 1 ? null : new Convolution(input, output, 1, stride: stride, bias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var activated = nn.functional.leaky_relu(bn1.forward(x), 0.1);
            var residual = shortcut is null ? x : shortcut.forward(activated);
            var h = conv1.forward(activated);
            h = conv2.forward(nn.functional.leaky_relu(bn2.forward(h), 0.1));
            return (h + residual).MoveToOuterDisposeScope();
        }
    }
}
