using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Dpt.Training.Optimization;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// The one training loop for image classifiers: supervised-only, FixMatch and FreeMatch differ only in the
/// <see cref="IUnlabeledObjective"/> they plug in. All images live on the device for the whole run; each step
/// samples indices there, augments there and runs in its own dispose scope; the host reads losses only at
/// progress reports. With <c>CheckpointFolder</c> set it saves its state every <c>CheckpointInterval</c> steps and
/// continues from a checkpoint of the same run (<see cref="TrainingCheckpoint"/>).
/// </summary>
internal sealed class ClassifierTrainingLoop
{
    private readonly SemiSupervisedTrainerOptions _options;
    private readonly Device _device;
    private readonly string _stage;
    private readonly Action<TrainingProgress> _report;
    private readonly Action<string> _log;

    public ClassifierTrainingLoop(SemiSupervisedTrainerOptions options, Device device, string stage, Action<TrainingProgress> report, Action<string> log)
    {
        _options = options;
        _device = device;
        _stage = stage;
        _report = report;
        _log = log;
    }

    /// <summary>Trains on <paramref name="data"/> (label -1 = unlabeled) and returns the EMA model.</summary>
    /// <param name="data">All real rows. Every row is also used as unlabeled data, as in USB.</param>
    /// <param name="seed">Seeds TorchSharp's generator: weights, sampling and augmentation.</param>
    /// <param name="extraLabeled">More labeled images (stage 3's generated images, rows labeled by propagation), or
    /// null. They join the labeled set only, as in DPT's CIFAR-10 recipe; the unlabeled set stays the real images.</param>
    /// <param name="extraWeights">Weight of each extra labeled image in the supervised loss relative to a real one.</param>
    /// <param name="initialWeights">A trained classifier of the same architecture to start from (fine-tuning), or null for from scratch.</param>
    public TrainedClassifier Train(ImageDataset data, int seed, ImageDataset? extraLabeled = null, float[]? extraWeights = null,
        TrainedClassifier? initialWeights = null)
    {
        if (extraLabeled is not null && extraWeights?.Length != extraLabeled.Count)
            throw new ArgumentException($"{extraLabeled.Count} extra labeled images need as many weights; got {extraWeights?.Length ?? 0}.", nameof(extraWeights));
        CheckEveryClassIsLabeled(data, extraLabeled, _options.LabelColumnName);
        var labeledRows = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] >= 0).ToArray();
        int classes = data.ClassNames.Count;
        var labeled = data.Select(labeledRows);
        int realLabeled = labeled.Count;
        if (extraLabeled is not null)
            labeled = ImageDataset.Concatenate(labeled, extraLabeled);

        random.manual_seed(seed);
        var spec = _options.NetworkSpecFor(data.Shape, classes);
        var network = ImageClassifierNetwork.Create(spec);
        var averageNetwork = ImageClassifierNetwork.Create(spec);
        if (initialWeights is not null)
        {
            if (initialWeights.Spec != spec)
                throw new ArgumentException($"The classifier to start from is a {initialWeights.Spec}; this training builds a {spec}.", nameof(initialWeights));
            network.load_state_dict(initialWeights.Network.state_dict());
        }
        network.to(_device);
        averageNetwork.to(_device);
        var average = new ExponentialMovingAverage(network, averageNetwork, _options.EmaDecay);

        using var labeledImages = labeled.ToTensor(_device);
        using var labeledTargets = tensor(labeled.Labels.Select(l => (long)l).ToArray(), device: _device);
        using var labeledWeights = tensor(Enumerable.Repeat(1f, realLabeled).Concat(extraWeights ?? Array.Empty<float>()).ToArray(), device: _device);
        bool useUnlabeled = _options.Algorithm != SemiSupervisedAlgorithm.SupervisedOnly;
        using var unlabeledImages = useUnlabeled ? data.ToTensor(_device) : null;
        var objective = CreateObjective(classes);
        var augmentation = new Augmentation(_options.Augmentation);
        var optimizer = new FlatSgd(network, _options.LearningRate, _options.Momentum, _options.WeightDecay, nesterov: _options.Momentum > 0);

        var trainingStep = new ClassifierTrainingStep(network, average, optimizer, augmentation, objective, _options.UnlabeledLossWeight);
        int steps = _options.NumberOfSteps, batch = _options.BatchSize, unlabeledBatch = batch * _options.UnlabeledRatio;
        var checkpoint = TrainingCheckpoint.In(_options.CheckpointFolder, _options.CheckpointInterval, _stage,
            new TrainingFingerprint(_stage, _options, seed).Add("data", data).Add("extraLabeled", extraLabeled)
                .Add("extraWeights", extraWeights).Add("initialWeights", initialWeights?.Network).AddConvolutionArithmetic(network));
        var algorithmState = objective?.State ?? Array.Empty<Tensor>();
        int firstStep = checkpoint?.Restore(network, average, optimizer, algorithmState) ?? 0;
        if (firstStep > 0) _log(checkpoint!.Describe(firstStep, steps));

        long imagesPerStep = batch + (useUnlabeled ? 2L * unlabeledBatch : 0);
        using var progress = new ProgressReporter(_stage, firstStep, steps, _options.LogInterval, imagesPerStep, columns: 3,   // total, supervised, mask rate
            supervisedColumn: 1, maskColumn: objective is null ? -1 : 2, _device, _report,
            (loss, step) => $"{_stage}: the training loss became {loss} at step {step}; lower LearningRate (now {_options.LearningRate}) or check the images for bad values.");
        network.train();
        for (int step = firstStep; step < steps; step++)
        {
            _options.CancellationToken.ThrowIfCancellationRequested();
            checkpoint?.ReseedAt(step, seed);
            // USB's cosine decay: the rate ends at cos(7π/16) ≈ 0.2 of its start.
            double learningRate = _options.LearningRate * Math.Cos(7 * Math.PI * step / (16.0 * steps));
            using (var scope = NewDisposeScope())
            {
                var index = randint(labeled.Count, new long[] { batch }, device: _device);
                var unlabeled = useUnlabeled ? unlabeledImages!.index_select(0, randint(data.Count, new long[] { unlabeledBatch }, device: _device)) : null;
                progress.Add(trainingStep.Run(labeledImages.index_select(0, index), labeledTargets.index_select(0, index),
                    labeledWeights.index_select(0, index), unlabeled, learningRate));
            }
            progress.AfterStep(step + 1, learningRate);
            if (checkpoint?.IsDue(step + 1, steps) == true)
                checkpoint.Save(step + 1, network, average, optimizer, objective?.State ?? Array.Empty<Tensor>());
        }
        network.Dispose();
        return new TrainedClassifier(averageNetwork, spec, data.Shape, data.ClassNames, _device);
    }

    /// <summary>Every class needs a labeled row, real or generated.</summary>
    public static void CheckEveryClassIsLabeled(ImageDataset data, ImageDataset? extraLabeled, string labelColumnName)
    {
        var labels = data.Labels.Concat(extraLabeled?.Labels ?? Array.Empty<int>()).Where(l => l >= 0).ToHashSet();
        if (labels.Count == 0)
            throw new InvalidOperationException($"Label column '{labelColumnName}' has no labeled rows; at least one row per class needs a label.");
        var missing = Enumerable.Range(0, data.ClassNames.Count).Where(c => !labels.Contains(c)).ToArray();
        if (missing.Length > 0)
            throw new InvalidOperationException($"Label column '{labelColumnName}' has no labeled row of class {string.Join(", ", missing.Select(c => $"'{data.ClassNames[c]}'"))}; every class needs at least one.");
    }

    private IUnlabeledObjective? CreateObjective(int classes) => _options.Algorithm switch
    {
        SemiSupervisedAlgorithm.SupervisedOnly => null,
        SemiSupervisedAlgorithm.FixMatch => new FixMatchObjective(_options.ConfidenceThreshold),
        SemiSupervisedAlgorithm.FreeMatch => new FreeMatchObjective(classes, _device, _options.FreeMatchMomentum, _options.FairnessWeight),
        _ => throw new ArgumentOutOfRangeException(nameof(_options.Algorithm), $"Unknown algorithm {_options.Algorithm}."),
    };
}
