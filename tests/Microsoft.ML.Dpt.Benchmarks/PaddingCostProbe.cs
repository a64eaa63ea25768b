using System.Globalization;
using System.Text;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>
/// What <see cref="Convolution"/>'s input padding costs on the CPU: the tiny U-Net's diffusion training step (the CPU
/// budget's generator) against its layers whose input channels are padded, each timed forward and backward as
/// <see cref="Convolution"/> computes it (a copy of the input with zero channels, then the 32-input kernel) and as a
/// plain <c>conv2d</c> over the real channels (oneDNN's kernel that is wrong on AVX-512: a cost reference, not a
/// choice). The layers' shapes are checked against the network as it is built.
/// </summary>
internal static class PaddingCostProbe
{
    /// <summary>Measures at <paramref name="batch"/> and returns the report as Markdown.</summary>
    public static string Run(int batch, int warmup, int repeats)
    {
        var device = CPU;
        using var setup = new DiffusionSetup(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Tiny, 1, 28, 28, 10), device, ScalarType.Float32);
        var trainingStep = new DiffusionTrainingStep(setup.Model, setup.Optimizer, setup.Average, setup.Options, 10);
        using var images = rand(batch, 1, 28, 28) * 2 - 1;
        using var labels = randint(10, new long[] { batch });

        // The tiny U-Net's input-padded layers are its two joins of 24 channels: 16 upsampled + 8 skipped at 14x14 (to
        // 16 outputs) and at 28x28 (to 8). Checked against the network, so that a changed U-Net stops the probe.
        var padded = new (long Inputs, long Outputs, long Side)[] { (24, 16, 14), (24, 8, 28) };
        var found = setup.Network.modules().OfType<Convolution>().Where(layer => layer.PadsInputs)
            .Select(layer => layer.named_parameters().First(p => p.name == "weight").parameter.shape)
            .Select(shape => (shape[1], shape[0])).OrderBy(layer => layer).ToArray();
        var expected = padded.Select(layer => (layer.Inputs, layer.Outputs)).OrderBy(layer => layer).ToArray();
        if (!found.SequenceEqual(expected))
            throw new InvalidOperationException($"The tiny U-Net's input-padded layers are {string.Join(", ", found)}, not {string.Join(", ", expected)}; update the probe's shapes.");

        double stepMs = StepTimer.MedianMilliseconds(device, warmup, repeats, () => trainingStep.Run(images, labels, setup.Options.LearningRate));
        var report = new StringBuilder()
            .AppendLine($"Tiny U-Net diffusion training step, batch {batch}, CPU ({Environment.ProcessorCount} cores), median of {repeats} after {warmup}: **{Format(stepMs)} ms**")
            .AppendLine()
            .AppendLine("| padded layer (input → outputs, forward + backward) | Convolution (padded) ms | plain conv2d ms | extra ms |")
            .AppendLine("|---|---|---|---|");
        double extraMs = 0;
        foreach (var (inputs, outputs, side) in padded)
        {
            var input = new[] { batch, inputs, side, side };
            random.manual_seed(2);
            using var layer = new Convolution(inputs, outputs, 3, padding: 1);
            var weight = layer.named_parameters().First(p => p.name == "weight").parameter;
            var bias = layer.named_parameters().First(p => p.name == "bias").parameter;
            using var x = randn(input).requires_grad_(true);
            double paddedMs = StepTimer.MedianMilliseconds(device, warmup, repeats, () => layer.forward(x).sum().backward());
            double plainMs = StepTimer.MedianMilliseconds(device, warmup, repeats,
                () => nn.functional.conv2d(x, weight, bias, padding: new long[] { 1, 1 }).sum().backward());
            extraMs += paddedMs - plainMs;
            report.AppendLine($"| {inputs} → {outputs} at {side}x{side} | {Format(paddedMs)} | {Format(plainMs)} | {Format(paddedMs - plainMs)} |");
        }
        report.AppendLine()
            .AppendLine($"Padding's extra time per step: {Format(extraMs)} ms, {Format(100 * extraMs / stepMs)} % of the step.");
        return report.ToString();
    }

    private static string Format(double value) => value.ToString("F2", CultureInfo.InvariantCulture);
}
