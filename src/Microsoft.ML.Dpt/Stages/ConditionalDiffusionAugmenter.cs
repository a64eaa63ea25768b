using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 2 of DPT: trains a class-conditional diffusion model on all rows, conditioned on stage 1's pseudo-labels
/// (or on true labels; with <c>ConditionedFraction</c> below 1 only each class's most confident rows keep theirs),
/// then generates <c>ImagesPerClass</c> images of every class once.
/// </summary>
/// <remarks>
/// In an estimator chain the fitted <see cref="ConditionalDiffusionTransformer"/> is a no-op on rows: its
/// <c>Transform</c> returns the input rows unchanged, carrying the generated images alongside (see
/// <see cref="ISyntheticImageSource"/>), so the next estimator's <c>Fit</c> (stage 3) can train on them while
/// scoring a test set returns exactly the test set's rows and <c>PredictionEngine</c> works.
/// </remarks>
public sealed class ConditionalDiffusionAugmenter : IEstimator<ConditionalDiffusionTransformer>
{
    /// <summary>Options of the <see cref="ConditionalDiffusionAugmenter"/>; defaults on <see cref="DiffusionTrainerOptions"/>.</summary>
    public sealed class Options : DiffusionTrainerOptions
    {
    }

    private readonly IHost _host;
    private readonly Options _options;

    internal ConditionalDiffusionAugmenter(MLContext mlContext, Options options)
    {
        _host = ((IHostEnvironment)mlContext).Register(nameof(ConditionalDiffusionAugmenter));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains the diffusion model, generates the pseudo images and returns the transformer.</summary>
    public ConditionalDiffusionTransformer Fit(IDataView input)
    {
        using var channel = _host.Start(nameof(Fit));
        var label = LabelColumn.Bind(input.Schema, _options.LabelColumnName);
        var image = ImageColumn.BindForTraining(input, _options.ImageColumnName, mlImageChannels: 3);
        var (labels, confidence) = _options.ConditionedFraction < 1
            ? ConfidentLabels.Read(input, label, _options.ConfidenceColumnName)
            : (label.ReadAll(input), (float[]?)null);
        if (labels.Length == 0) throw new ArgumentException("The training data has no rows.", nameof(input));
        var empty = Enumerable.Range(0, label.ClassCount).Where(c => !labels.Contains(c)).ToArray();
        if (empty.Length > 0)
            throw new InvalidOperationException($"Label column '{label.Name}' has no row of class {string.Join(", ", empty.Select(c => $"'{label.ClassNames[c]}'"))}; the diffusion model cannot learn a class it never sees.");
        if (confidence is not null)
        {
            labels = ConfidentLabels.KeepMostConfident(labels, confidence, _options.ConditionedFraction);
            channel.Info(MessageSensitivity.None, $"ConditionalDiffusion: ConditionedFraction {_options.ConditionedFraction}: {labels.Count(l => l >= 0)} rows, " +
                $"the most confident of each class by '{_options.ConfidenceColumnName}', keep their label.");
        }
        var data = new ImageDataset(image.ReadAll(input, _options.CancellationToken), labels, image.Shape, label.ClassNames);
        if (_options.Backbone == DenoiserBackbone.UNet && (image.Shape.Height < 8 || image.Shape.Width < 8))
            throw new ArgumentOutOfRangeException(nameof(input), $"Image column '{image.Name}' holds {image.Shape.Width}x{image.Shape.Height} images; the U-Net needs at least 8x8.");

        var device = DeviceSelection.Resolve(_options.Device, m => channel.Info(MessageSensitivity.None, m));
        int seed = _options.Seed ?? _host.Rand.Next();
        var spec = new DenoiserSpec(_options.Backbone, _options.Size, image.Shape.Channels, image.Shape.Height, image.Shape.Width, label.ClassCount);
        int unconditional = data.Labels.Count(l => l < 0);
        channel.Info(MessageSensitivity.None, $"ConditionalDiffusion: {_options.Size} {_options.Backbone} on {data.Count} images of {image.Shape} conditioned on '{label.Name}'" +
            (unconditional > 0 ? $" ({unconditional} without a label train the null class only)" : "") + $", {_options.NumberOfSteps} steps on {device.type}, seed {seed}.");
        var loop = new DiffusionTrainingLoop(_options, device, ProgressSink.Create(channel, _options.Progress),
            message => channel.Info(MessageSensitivity.None, $"ConditionalDiffusion: {message}."));
        var model = loop.Train(data, spec, seed);
        var generator = new ConditionalGenerator(model, spec, image.Shape, label.ClassNames, device, _options.Sampler, _options.SamplingSteps, _options.GuidanceScale,
            _options.ClipDenoisedImages);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var synthetic = generator.GenerateDataset(_options.ImagesPerClass, seed, _options.CancellationToken);
        channel.Info(MessageSensitivity.None, $"ConditionalDiffusion: generated {synthetic.Count} images ({_options.ImagesPerClass} per class, {_options.Sampler}, {_options.SamplingSteps} steps, guidance {_options.GuidanceScale}) in {clock.Elapsed.TotalSeconds:F1} s.");
        return new ConditionalDiffusionTransformer(generator, synthetic, _options.ImageColumnName);
    }

    /// <summary>Checks the image and label columns; the output schema equals the input schema.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ClassifierTraining.CheckLabel(inputSchema, _options.LabelColumnName);
        Scoring.ClassifierOutputs.CheckImageColumn(inputSchema, _options.ImageColumnName);
        if (_options.ConditionedFraction < 1)
        {
            var confidence = inputSchema.FirstOrDefault(c => c.Name == _options.ConfidenceColumnName);
            if (confidence.Name is null)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Confidence column '{_options.ConfidenceColumnName}' was not found in the input schema; ConditionedFraction {_options.ConditionedFraction} ranks each class's rows by it.");
            if (confidence.Kind != SchemaShape.Column.VectorKind.Scalar || confidence.ItemType != NumberDataViewType.Single || confidence.IsKey)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Confidence column '{_options.ConfidenceColumnName}' has type {confidence.ItemType} ({confidence.Kind}); expected a scalar Single.");
        }
        return inputSchema;
    }
}
