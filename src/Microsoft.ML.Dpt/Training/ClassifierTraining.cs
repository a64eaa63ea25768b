using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Encoders;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Microsoft.ML.Dpt.Training.SelfSupervised;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Dpt.Training;

/// <summary>The steps every classifier estimator's <c>Fit</c> shares: read the rows, pick the device, train with logging.</summary>
internal static class ClassifierTraining
{
    /// <summary>Reads the image and label columns into memory, checking their types.</summary>
    public static ImageDataset ReadTrainingData(IDataView input, SemiSupervisedTrainerOptions options)
    {
        var label = LabelColumn.Bind(input.Schema, options.LabelColumnName);
        var image = ImageColumn.BindForTraining(input, options.ImageColumnName, options.MLImageChannels);
        var pixels = image.ReadAll(input, options.CancellationToken);
        var labels = label.ReadAll(input);
        if (labels.Length == 0) throw new ArgumentException("The training data has no rows.", nameof(input));
        // Both networks halve the resolution twice (pooling or stride 2), so smaller images have nothing left.
        if (image.Shape.Height < 4 || image.Shape.Width < 4)
            throw new ArgumentOutOfRangeException(nameof(input), $"Image column '{options.ImageColumnName}' holds {image.Shape.Width}x{image.Shape.Height} images; the networks need at least 4x4.");
        return new ImageDataset(pixels, labels, image.Shape, label.ClassNames);
    }

    /// <summary>
    /// Trains on <paramref name="data"/>, logging through <paramref name="channel"/> and the options' callback: first
    /// the self-supervised pretraining when the options ask for it (and no <paramref name="startFrom"/> is given),
    /// then either the whole network with the semi-supervised algorithm or a head on the frozen encoder.
    /// </summary>
    public static TrainedClassifier Train(IHost host, IChannel channel, SemiSupervisedTrainerOptions options, ImageDataset data, string stage,
        ImageDataset? extraLabeled = null, double extraWeight = 1.0, TrainedClassifier? startFrom = null)
    {
        var device = DeviceSelection.Resolve(options.Device, message => channel.Info(MessageSensitivity.None, message));
        int seed = options.Seed ?? host.Rand.Next();
        int labeled = data.Labels.Count(l => l >= 0);
        var spec = options.NetworkSpecFor(data.Shape, data.ClassNames.Count);
        bool pretrain = options.Pretraining is not null && startFrom is null;
        var report = ProgressSink.Create(channel, options.Progress);
        void Log(string message) => channel.Info(MessageSensitivity.None, $"{stage}: {message}.");

        if (options.Encoder is not null)
        {
            channel.Info(MessageSensitivity.None, $"{stage}: {options.Head} head on the frozen features of ONNX encoder '{options.Encoder.Name}' " +
                $"for {data.Count} images of {data.Shape} ({labeled} labeled" + (extraLabeled is null ? "" : $", plus {extraLabeled.Count} generated") + $"), seed {seed}.");
            return FitFrozenHead(() => new OnnxEncoderNetwork(options.Encoder), options, options.Head, spec, data, extraLabeled, extraWeight, seed, device, Log);
        }

        channel.Info(MessageSensitivity.None,
            $"{stage}: {(options.Head == FewLabelHead.FineTune ? options.Algorithm.ToString() : options.Head + " head on frozen features")} with {options.Network} " +
            $"on {data.Count} images of {data.Shape} ({labeled} labeled" + (extraLabeled is null ? "" : $", plus {extraLabeled.Count} generated") + ")" +
            (pretrain ? $", after {options.Pretraining!.NumberOfSteps} steps of contrastive pretraining" : "") +
            (options.Head == FewLabelHead.FineTune ? $", {options.NumberOfSteps} steps" : "") + $" on {device.type}, seed {seed}.");

        // The pretrained encoder is only a starting point: both paths copy its weights, so it is disposed either way.
        using var pretrained = pretrain
            ? new TrainedClassifier(new ContrastivePretrainingLoop(options, device, report, Log).Pretrain(data, spec.AsEncoder(), seed),
                spec.AsEncoder(), data.Shape, data.ClassNames, device)
            : null;
        var initial = startFrom ?? pretrained;
        if (options.Head == FewLabelHead.FineTune)
        {
            var generated = extraLabeled;
            var extraWeights = extraLabeled is null ? null : Enumerable.Repeat((float)extraWeight, extraLabeled.Count).ToArray();
            if (options.PropagatedLabelFraction > 0)
            {
                if (initial is null)
                    throw new InvalidOperationException($"{stage}: PropagatedLabelFraction spreads labels over a pretrained encoder's features; set Pretraining" +
                        (stage == "DptClassifierTrainer" ? " or StartFrom." : "."));
                (extraLabeled, extraWeights) = AddPropagatedRows(initial, options, data, extraLabeled, extraWeights, device, Log);
            }
            var fineTuned = new ClassifierTrainingLoop(options, device, stage, report, Log).Train(data, seed, extraLabeled, extraWeights, initial);
            if (!options.PropagateAfterFineTuning) return fineTuned;
            // The head reads the fine-tuned encoder; the propagated rows are found again on its features, so only the
            // generated images join as extra labeled rows.
            Log("PropagateAfterFineTuning: label propagation over the fine-tuned network's features");
            using (fineTuned)
                return FitFrozenHead(() => CopyEncoder(fineTuned, spec.AsEncoder()), options, FewLabelHead.LabelPropagation,
                    spec with
                    {
                        NormalizedFeatureHead = true, HeadGradientWeight = options.HeadGradientWeight, FeatureGrid = options.FeatureGrid,
                        MirrorAveragedFeatures = options.MirrorAveragedFeatures,
                    }, data, generated, extraWeight, seed, device, Log);
        }

        if (initial is null)
            throw new InvalidOperationException($"{stage}: Head {options.Head} reads the features of a pretrained encoder; set Pretraining" +
                (stage == "DptClassifierTrainer" ? " or StartFrom." : "."));
        return FitFrozenHead(() => CopyEncoder(initial, spec.AsEncoder()), options, options.Head, spec, data, extraLabeled, extraWeight, seed, device, Log);
    }

    /// <summary>
    /// Checks that every class is labeled, builds the encoder and fits <paramref name="head"/> on its frozen features;
    /// the encoder is disposed when fitting fails (an ONNX encoder's sessions hold native memory).
    /// </summary>
    private static TrainedClassifier FitFrozenHead(Func<ImageClassifierNetwork> createEncoder, SemiSupervisedTrainerOptions options, FewLabelHead head, NetworkSpec spec,
        ImageDataset data, ImageDataset? extraLabeled, double extraWeight, int seed, TorchSharp.torch.Device device, Action<string> log)
    {
        ClassifierTrainingLoop.CheckEveryClassIsLabeled(data, extraLabeled, options.LabelColumnName);
        var encoder = createEncoder();
        try
        {
            var network = FrozenFeatureHead.Fit(encoder, head, spec.HeadGradientWeight, spec.FeatureGrid, spec.MirrorAveragedFeatures, data, extraLabeled, extraWeight,
                options.HeadL2Regularization, PropagationSettings.From(options), seed, device, options.CancellationToken, log);
            return new TrainedClassifier(network, spec, data.Shape, data.ClassNames, device);
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Label propagation over <paramref name="encoder"/>'s features gives every unlabeled row a class; the most
    /// certain <see cref="SemiSupervisedTrainerOptions.PropagatedLabelFraction"/> of each class's rows join the extra
    /// labeled rows, each weighted by its certainty.
    /// </summary>
    private static (ImageDataset Extra, float[] Weights) AddPropagatedRows(TrainedClassifier encoder, SemiSupervisedTrainerOptions options, ImageDataset data,
        ImageDataset? extraLabeled, float[]? extraWeights, TorchSharp.torch.Device device, Action<string> log)
    {
        var (labels, certainty) = FrozenFeatureHead.PropagateLabels(encoder.Network, options.FeatureGrid, options.MirrorAveragedFeatures, data, PropagationSettings.From(options),
            device, options.CancellationToken, log);
        var chosen = Enumerable.Range(0, data.Count)
            .Where(i => data.Labels[i] < 0 && certainty[i] > 0)
            .GroupBy(i => labels[i])
            .SelectMany(group => group.OrderByDescending(i => certainty[i]).ThenBy(i => i)
                .Take((int)Math.Ceiling(options.PropagatedLabelFraction * group.Count())))
            .OrderBy(i => i).ToArray();
        log($"{chosen.Length} unlabeled rows join the labeled set with their propagated class (lowest certainty {chosen.Select(i => certainty[i]).DefaultIfEmpty().Min():F3})");
        var propagated = new ImageDataset(data.Select(chosen).Pixels, chosen.Select(i => labels[i]).ToArray(), data.Shape, data.ClassNames);
        var weights = chosen.Select(i => certainty[i]).ToArray();
        return extraLabeled is null
            ? (propagated, weights)
            : (ImageDataset.Concatenate(extraLabeled, propagated), extraWeights!.Concat(weights).ToArray());
    }

    /// <summary>A copy of a classifier's encoder (its own weights, so that disposing one model leaves the other intact).</summary>
    private static ImageClassifierNetwork CopyEncoder(TrainedClassifier source, NetworkSpec encoderSpec)
    {
        var sourceEncoder = source.Network is NormalizedFeatureClassifier frozen ? frozen.Encoder : source.Network;
        if (source.Spec.AsEncoder() != encoderSpec)
            throw new ArgumentException($"The classifier to start from is a {source.Spec.AsEncoder()}; this training builds a {encoderSpec}.");
        var encoder = ImageClassifierNetwork.Create(encoderSpec);
        encoder.load_state_dict(sourceEncoder.state_dict());
        return encoder;
    }

    /// <summary>Checks the label column of a schema shape: a key type over UInt32.</summary>
    public static SchemaShape CheckLabel(SchemaShape input, string labelColumnName)
    {
        var label = input.FirstOrDefault(c => c.Name == labelColumnName);
        if (label.Name is null)
            throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{labelColumnName}' was not found in the input schema.");
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{labelColumnName}' has type {label.ItemType} ({label.Kind}{(label.IsKey ? ", key" : "")}); expected a scalar key type over UInt32 (use mlContext.Transforms.Conversion.MapValueToKey). A missing key marks an unlabeled row.");
        return input;
    }
}
