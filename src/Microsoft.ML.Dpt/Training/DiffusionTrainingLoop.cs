using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Dpt.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// The training loop of the conditional diffusion model: ε- or v-prediction MSE at uniformly drawn steps, labels
/// replaced by the null class with probability <c>ConditionDropout</c> (classifier-free guidance), AdamW with
/// linear warm-up, global-norm clipping on the device, and an EMA of the weights that sampling uses. Images live
/// on the device; the host reads the loss only at progress reports. With <c>CheckpointFolder</c> set it saves its
/// state every <c>CheckpointInterval</c> steps and continues from a checkpoint of the same run.
/// </summary>
internal sealed class DiffusionTrainingLoop
{
    private const string Stage = "ConditionalDiffusion";
    private readonly DiffusionTrainerOptions _options;
    private readonly Device _device;
    private readonly Action<TrainingProgress> _report;
    private readonly Action<string> _log;

    public DiffusionTrainingLoop(DiffusionTrainerOptions options, Device device, Action<TrainingProgress> report, Action<string> log)
    {
        _options = options;
        _device = device;
        _report = report;
        _log = log;
    }

    /// <summary>Trains on <paramref name="data"/> (label -1: null class only) and returns the EMA model.</summary>
    public DiffusionModel Train(ImageDataset data, DenoiserSpec spec, int seed)
    {
        random.manual_seed(seed);
        var schedule = NoiseSchedule.Create(_options.Schedule, _options.ScheduleSteps);
        var network = DenoiserNetwork.Create(spec);
        var averageNetwork = DenoiserNetwork.Create(spec);
        network.to(_device);
        averageNetwork.to(_device);
        var average = new ExponentialMovingAverage(network, averageNetwork, _options.EmaDecay);
        var model = new DiffusionModel(network, schedule, _options.Prediction);
        var optimizer = new FlatAdamW(network, _options.LearningRate, _options.WeightDecay);
        var trainingStep = new DiffusionTrainingStep(model, optimizer, average, _options, spec.Classes);

        using var images = (data.ToTensor(_device) * 2 - 1);
        using var labels = tensor(data.Labels.Select(l => l < 0 ? (long)spec.Classes : l).ToArray(), device: _device);
        int steps = _options.NumberOfSteps, batch = _options.BatchSize;
        var checkpoint = TrainingCheckpoint.In(_options.CheckpointFolder, _options.CheckpointInterval, Stage,
            new TrainingFingerprint(Stage, _options, seed).Add("data", data).Add("denoiser", spec.ToString())
                .AddConvolutionArithmetic(network));
        int firstStep = checkpoint?.Restore(network, average, optimizer, Array.Empty<Tensor>()) ?? 0;
        if (firstStep > 0) _log(checkpoint!.Describe(firstStep, steps));

        using var progress = new ProgressReporter(Stage, firstStep, steps, _options.LogInterval, batch, columns: 1, supervisedColumn: 0, maskColumn: -1,
            _device, _report, (loss, step) => $"Diffusion training: the loss became {loss} at step {step}; lower LearningRate (now {_options.LearningRate}) or GradientClipNorm, or check the images for bad values.");
        network.train();
        for (int step = firstStep; step < steps; step++)
        {
            _options.CancellationToken.ThrowIfCancellationRequested();
            checkpoint?.ReseedAt(step, seed);
            double learningRate = _options.LearningRate * Math.Min(1.0, (step + 1.0) / Math.Max(1, _options.WarmupSteps));
            using (var scope = NewDisposeScope())
            {
                var index = randint(data.Count, new long[] { batch }, device: _device);
                progress.Add(trainingStep.Run(images.index_select(0, index), labels.index_select(0, index), learningRate));
            }
            progress.AfterStep(step + 1, learningRate);
            if (checkpoint?.IsDue(step + 1, steps) == true)
                checkpoint.Save(step + 1, network, average, optimizer, Array.Empty<Tensor>());
        }
        network.Dispose();
        return new DiffusionModel(averageNetwork, schedule, _options.Prediction);
    }
}
