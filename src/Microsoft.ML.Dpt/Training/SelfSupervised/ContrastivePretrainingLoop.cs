using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Dpt.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.SelfSupervised;

/// <summary>
/// The self-supervised training loop: SimCLR on every image, labels unread. Images live on the device, both views
/// are made there, each step runs in its own dispose scope, and the host reads the loss only at progress reports.
/// Checkpoints as the other loops; the fingerprint covers the images but not the labels, so stage 3 can reuse the
/// encoder that stage 1 pretrained on the same images.
/// </summary>
internal sealed class ContrastivePretrainingLoop
{
    private const string Stage = "ContrastivePretraining";
    private readonly SemiSupervisedTrainerOptions _options;
    private readonly Device _device;
    private readonly Action<TrainingProgress> _report;
    private readonly Action<string> _log;

    public ContrastivePretrainingLoop(SemiSupervisedTrainerOptions options, Device device, Action<TrainingProgress> report, Action<string> log)
    {
        _options = options;
        _device = device;
        _report = report;
        _log = log;
    }

    /// <summary>Pretrains a network of <paramref name="spec"/> and returns it with its (untrained) classification layer.</summary>
    public ImageClassifierNetwork Pretrain(ImageDataset data, NetworkSpec spec, int seed)
    {
        var pretraining = _options.Pretraining ?? throw new InvalidOperationException("No pretraining options.");
        random.manual_seed(seed);
        var network = new ContrastiveNetwork(ImageClassifierNetwork.Create(spec), pretraining.ProjectionLength);
        network.to(_device);
        var optimizer = new FlatAdamW(network, pretraining.LearningRate, pretraining.WeightDecay);
        var augmentation = new Augmentation(_options.Augmentation);

        int steps = pretraining.NumberOfSteps, batch = Math.Min(pretraining.BatchSize, data.Count);
        if (batch < 2) throw new ArgumentException($"Contrastive pretraining needs at least 2 images; the data has {data.Count}.");
        var checkpoint = TrainingCheckpoint.In(_options.CheckpointFolder, _options.CheckpointInterval, Stage,
            new TrainingFingerprint(Stage, pretraining, seed).AddImages("images", data).Add("network", spec.ToString())
                .Add("augmentation", _options.Augmentation.ToString()).AddConvolutionArithmetic(network));
        int firstStep = checkpoint?.Restore(network, null, optimizer, Array.Empty<Tensor>()) ?? 0;
        if (firstStep > 0) _log(checkpoint!.Describe(firstStep, steps));

        using var images = data.ToTensor(_device);
        int warmup = Math.Max(1, steps / 20);
        using var progress = new ProgressReporter(Stage, firstStep, steps, _options.LogInterval, 2.0 * batch, columns: 1, supervisedColumn: -1, maskColumn: -1,
            _device, _report, (loss, step) => $"{Stage}: the loss became {loss} at step {step}; lower Pretraining.LearningRate (now {pretraining.LearningRate}) or check the images for bad values.");
        network.train();
        for (int step = firstStep; step < steps; step++)
        {
            _options.CancellationToken.ThrowIfCancellationRequested();
            checkpoint?.ReseedAt(step, seed);
            optimizer.LearningRate = pretraining.LearningRate * (step < warmup ? (step + 1.0) / warmup
                : 0.5 * (1 + Math.Cos(Math.PI * (step - warmup) / Math.Max(1, steps - warmup))));
            using (var scope = NewDisposeScope())
            {
                var x = images.index_select(0, randint(data.Count, new long[] { batch }, device: _device));
                var views = cat(new[] { augmentation.Contrastive(x, pretraining.MinCropScale), augmentation.Contrastive(x, pretraining.MinCropScale) });
                var loss = NtXentLoss.Compute(network.forward(views), pretraining.Temperature);
                optimizer.ZeroGrad();
                loss.backward();
                optimizer.Step();
                progress.Add(loss.detach());
            }
            progress.AfterStep(step + 1, optimizer.LearningRate);
            if (checkpoint?.IsDue(step + 1, steps) == true)
                checkpoint.Save(step + 1, network, null, optimizer, Array.Empty<Tensor>());
        }
        return network.ReleaseEncoder();
    }
}
