using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.Optimization;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>One measured row: what ran, its parameter count, the median step time and the images per second.</summary>
internal sealed record BenchmarkRow(string Name, string Precision, long Parameters, int ImagesPerStep, double MedianMilliseconds, string? Error = null)
{
    public double ImagesPerSecond => ImagesPerStep / (MedianMilliseconds / 1000);
}

/// <summary>
/// The steps issue 5 compares with PyTorch: a diffusion training step (U-Net at 28x28 and 32x32 colour, U-ViT), a
/// FreeMatch classifier step with weak and strong views, and guided DPM-Solver++ sampling. Each is built from the
/// package's own training-step classes, so it times exactly what training runs. Inputs are random images in
/// [0, 1], never all zeros.
/// </summary>
internal sealed class Benchmarks
{
    private readonly Device _device;
    private readonly bool _small;
    private readonly int _warmup, _repeats;

    public Benchmarks(Device device, bool small, int warmup, int repeats)
    {
        _device = device;
        _small = small;
        _warmup = warmup;
        _repeats = repeats;
    }

    private int Size(int full, int small) => _small ? small : full;

    public IEnumerable<Func<ScalarType, BenchmarkRow>> All()
    {
        yield return p => DiffusionStep("diffusion step, U-Net Small, 1x28x28", DenoiserBackbone.UNet, DenoiserSize.Small, 1, 28, Size(256, 32), p);
        yield return p => DiffusionStep("diffusion step, U-Net Large, 3x32x32", DenoiserBackbone.UNet, DenoiserSize.Large, 3, 32, Size(128, 16), p);
        yield return p => DiffusionStep("diffusion step, U-ViT Small, 1x28x28", DenoiserBackbone.UViT, DenoiserSize.Small, 1, 28, Size(256, 32), p);
        yield return p => ClassifierStep("FreeMatch step, SmallCnn w32, 1x28x28", ClassifierNetwork.SmallCnn, 32, 1, 28, Size(64, 16), Size(448, 112), p);
        yield return p => ClassifierStep("FreeMatch step, WRN-28-2, 3x32x32", ClassifierNetwork.WideResNet28x2, 2, 3, 32, Size(64, 8), Size(448, 56), p);
        yield return p => Sampling("DPM-Solver++ 25 steps + guidance + clamped x0, U-Net Small, 1x28x28", Size(1000, 100), p);
    }

    private BenchmarkRow DiffusionStep(string name, DenoiserBackbone backbone, DenoiserSize size, int channels, int side, int batch, ScalarType precision)
    {
        using var setup = new DiffusionSetup(new DenoiserSpec(backbone, size, channels, side, side, 10), _device, precision);
        var step = new DiffusionTrainingStep(setup.Model, setup.Optimizer, setup.Average, setup.Options, 10);
        using var images = (rand(batch, channels, side, side, device: _device) * 2 - 1).to(precision);
        using var labels = randint(10, new long[] { batch }, device: _device);
        double ms = StepTimer.MedianMilliseconds(_device, _warmup, _repeats, () => step.Run(images, labels, setup.Options.LearningRate));
        return new BenchmarkRow(name, Name(precision), Count(setup.Network), batch, ms);
    }

    /// <summary>
    /// The diffusion step of U-Net Small taken apart: forward and loss, then backward, clipping, AdamW and EMA added
    /// one at a time, each timed as a whole and as host time (until the call returns, before synchronising). Where
    /// the host time is close to the whole, the host issuing kernels is the bottleneck.
    /// </summary>
    public IEnumerable<(string Phase, double Milliseconds, double HostMilliseconds)> DiffusionPhases(ScalarType precision)
    {
        int batch = Size(256, 32);
        using var setup = new DiffusionSetup(new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Small, 1, 28, 28, 10), _device, precision);
        var (model, optimizer, average) = (setup.Model, setup.Optimizer, setup.Average);
        using var images = (rand(batch, 1, 28, 28, device: _device) * 2 - 1).to(precision);
        using var labels = randint(10, new long[] { batch }, device: _device);
        using var timesteps = randint(1000, new long[] { batch }, device: _device);
        using var noise = randn_like(images);
        var phases = new (string Name, Action Step)[]
        {
            ("forward and loss", () => model.Loss(images, labels, timesteps, noise)),
            ("+ backward", () => { optimizer.ZeroGrad(); model.Loss(images, labels, timesteps, noise).backward(); }),
            ("+ clipping", () => { optimizer.ZeroGrad(); model.Loss(images, labels, timesteps, noise).backward(); optimizer.ClipGradientNorm(1.0); }),
            ("+ AdamW", () => { optimizer.ZeroGrad(); model.Loss(images, labels, timesteps, noise).backward(); optimizer.ClipGradientNorm(1.0); optimizer.Step(); }),
            ("+ EMA", () => { optimizer.ZeroGrad(); model.Loss(images, labels, timesteps, noise).backward(); optimizer.ClipGradientNorm(1.0); optimizer.Step(); average.Update(); }),
        };
        foreach (var (name, step) in phases)
        {
            var (ms, host) = StepTimer.Measure(_device, _warmup, _repeats, step);
            yield return (name, ms, host);
        }
    }

    private BenchmarkRow ClassifierStep(string name, ClassifierNetwork kind, int width, int channels, int side, int labeledBatch, int unlabeledBatch, ScalarType precision)
    {
        random.manual_seed(1);
        var spec = new NetworkSpec(kind, channels, 10, width);
        using var network = ImageClassifierNetwork.Create(spec);
        using var averageNetwork = ImageClassifierNetwork.Create(spec);
        network.to(_device, precision);
        averageNetwork.to(_device, precision);
        var options = new SemiSupervisedTrainerOptions();
        var average = new ExponentialMovingAverage(network, averageNetwork, options.EmaDecay);
        var optimizer = new FlatSgd(network, options.LearningRate, options.Momentum, options.WeightDecay, nesterov: true);
        var step = new ClassifierTrainingStep(network, average, optimizer, new Augmentation(options.Augmentation),
            new FreeMatchObjective(10, _device, options.FreeMatchMomentum, options.FairnessWeight), options.UnlabeledLossWeight);
        using var labeled = rand(labeledBatch, channels, side, side, device: _device).to(precision);
        using var unlabeled = rand(unlabeledBatch, channels, side, side, device: _device).to(precision);
        using var targets = randint(10, new long[] { labeledBatch }, device: _device);
        using var weights = ones(labeledBatch, device: _device).to(precision);
        network.train();
        double ms = StepTimer.MedianMilliseconds(_device, _warmup, _repeats, () => step.Run(labeled, targets, weights, unlabeled, options.LearningRate));
        return new BenchmarkRow(name, Name(precision), Count(network), labeledBatch + 2 * unlabeledBatch, ms);
    }

    private BenchmarkRow Sampling(string name, int batch, ScalarType precision)
    {
        random.manual_seed(1);
        var spec = new DenoiserSpec(DenoiserBackbone.UNet, DenoiserSize.Small, 1, 28, 28, 10);
        using var network = DenoiserNetwork.Create(spec);
        network.to(_device, precision);
        network.eval();
        var model = new DiffusionModel(network, NoiseSchedule.Create(NoiseScheduleKind.Cosine, 1000), PredictionType.Epsilon);
        var sampler = Sampler.Create(SamplerKind.DpmSolverPlusPlus);
        using var labels = randint(10, new long[] { batch }, device: _device);
        // Clamped as ConditionalGenerator samples by default (DiffusionTrainerOptions.ClipDenoisedImages).
        var guided = new ClippedCleanEstimate(new ClassifierFreeGuidance(model, labels, 1.0), model.Schedule);
        double ms = StepTimer.MedianMilliseconds(_device, Math.Min(_warmup, 1), Math.Max(1, _repeats / 4), () =>
        {
            using var _ = no_grad();
            sampler.Sample(guided, model.Schedule, randn(batch, 1, 28, 28, device: _device).to(precision), steps: 25);
        });
        return new BenchmarkRow(name, Name(precision), Count(network), batch, ms);
    }

    private static long Count(nn.Module module) => module.parameters().Sum(p => p.numel());

    private static string Name(ScalarType precision) => precision == ScalarType.BFloat16 ? "bf16" : "fp32";
}
