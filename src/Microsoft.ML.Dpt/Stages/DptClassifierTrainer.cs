using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Stages.Scoring;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Runtime;
using static Microsoft.ML.Dpt.Training.OptionChecks;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 3 of DPT: retrains the image classifier on the real rows (labeled and unlabeled) plus the generated images
/// that stage 2 passes along the chain. Default recipe, as in the paper's CIFAR-10 experiment: stage 1's
/// semi-supervised algorithm retrained from scratch, with the generated images added to the <em>labeled</em> set
/// and the unlabeled set unchanged.
/// </summary>
/// <remarks>
/// The generated images come from the input data view when it is a stage-2 output (<see cref="ISyntheticImageSource"/>,
/// what <see cref="ConditionalDiffusionTransformer.Transform"/> returns); without them the trainer is stage 1 again
/// and says so in the log. Output: <c>Score</c> and <c>PredictedLabel</c>, as ML.NET's multiclass trainers.
/// </remarks>
public sealed class DptClassifierTrainer : IEstimator<DptClassifierTransformer>
{
    /// <summary>Options of the <see cref="DptClassifierTrainer"/>; training defaults on <see cref="SemiSupervisedTrainerOptions"/>.</summary>
    public sealed class Options : SemiSupervisedTrainerOptions
    {
        /// <summary>
        /// Generated images used per class; null uses all that stage 2 made (and the filter keeps). With a filter
        /// (<see cref="GeneratedImageFilter"/> or <see cref="FilterWithPseudoLabeler"/>) the images it finds most probable for
        /// their class are taken first; without one, the first ones made. Default: null.
        /// </summary>
        public int? GeneratedImagesPerClass { get; set; }

        /// <summary>Weight of a generated image in the supervised loss, relative to a real labeled one. Default: 1.</summary>
        public double GeneratedImageWeight { get; set; } = 1.0;

        /// <summary>
        /// A classifier that vets the generated images (for example stage 1's <c>PseudoLabelerTransformer.Classifier</c>):
        /// only those it assigns to the class they were generated for are used, before <see cref="GeneratedImagesPerClass"/>
        /// takes its share. A generator trained on wrong pseudo-labels draws many images of other classes; this keeps
        /// them out of the labeled set. Null uses every image. Default: null.
        /// </summary>
        [ExcludedFromFingerprint]   // the images it keeps are fingerprinted
        public TrainedClassifier? GeneratedImageFilter { get; set; }

        /// <summary>
        /// Vets the generated images with the classifier that scored the input rows, as <see cref="GeneratedImageFilter"/>
        /// does: in a chain (<c>DualPseudoTraining</c>, or the three estimators appended by hand) that is stage 1's
        /// classifier, which is not fitted yet when the options are written. Ignored when <see cref="GeneratedImageFilter"/>
        /// is set. Default: false.
        /// </summary>
        [ExcludedFromFingerprint]   // as GeneratedImageFilter
        public bool FilterWithPseudoLabeler { get; set; }

        /// <summary>
        /// The least probability the filter (<see cref="GeneratedImageFilter"/> or <see cref="FilterWithPseudoLabeler"/>)
        /// must give a generated image's own class for the image to be used; an image it assigns to another class is never
        /// used. A generator's worst images of a class can still win the filter's vote by a small margin; a threshold keeps
        /// only the ones it is sure of. Needs a filter. Default: 0 (every image the filter assigns to its own class).
        /// </summary>
        public double GeneratedImageMinimumConfidence { get; set; }

        /// <summary>
        /// The least share of a class's generated images that the filter (<see cref="GeneratedImageFilter"/> or
        /// <see cref="FilterWithPseudoLabeler"/>) must keep for any of that class to be used. The share a filter keeps
        /// tells how well the generator draws the class: where it rejects most of them, the few it lets through are
        /// mostly the generator's failures that happen to look like the class to it, and as labeled images they pull
        /// the class the wrong way. Needs a filter. Default: 0 (every class keeps what the filter keeps).
        /// </summary>
        public double GeneratedClassMinimumPassRate { get; set; }

        /// <summary>A classifier to fine-tune from (for example stage 1's <c>PseudoLabelerTransformer.Classifier</c>); null trains from scratch. Default: null.</summary>
        [ExcludedFromFingerprint]
        public TrainedClassifier? StartFrom { get; set; }

        /// <summary>Output vector column of class probabilities. Default: "Score".</summary>
        [ExcludedFromFingerprint]
        public string ScoreColumnName { get; set; } = DefaultColumnNames.Score;

        /// <summary>Output key column of the predicted class. Default: "PredictedLabel".</summary>
        [ExcludedFromFingerprint]
        public string PredictedLabelColumnName { get; set; } = DefaultColumnNames.PredictedLabel;

        internal override void Validate()
        {
            base.Validate();
            Check(GeneratedImagesPerClass is null or >= 0, nameof(GeneratedImagesPerClass), GeneratedImagesPerClass, "null or at least 0");
            Check(GeneratedImageWeight >= 0 && double.IsFinite(GeneratedImageWeight), nameof(GeneratedImageWeight), GeneratedImageWeight, "a non-negative number");
            Check(GeneratedImageMinimumConfidence is >= 0 and <= 1, nameof(GeneratedImageMinimumConfidence), GeneratedImageMinimumConfidence, "a probability in [0, 1]");
            Check(GeneratedClassMinimumPassRate is >= 0 and <= 1, nameof(GeneratedClassMinimumPassRate), GeneratedClassMinimumPassRate, "a share in [0, 1]");
            // Both thresholds act on the filter's verdicts, so without a filter a non-zero one would be silently ignored.
            bool filtered = GeneratedImageFilter is not null || FilterWithPseudoLabeler;
            foreach (var (name, threshold) in new[] { (nameof(GeneratedImageMinimumConfidence), GeneratedImageMinimumConfidence), (nameof(GeneratedClassMinimumPassRate), GeneratedClassMinimumPassRate) })
                Check(threshold == 0 || filtered, name, threshold, "0 when there is no filter (set GeneratedImageFilter or FilterWithPseudoLabeler)");
            Check(!string.IsNullOrWhiteSpace(ScoreColumnName) && !string.IsNullOrWhiteSpace(PredictedLabelColumnName) && ScoreColumnName != PredictedLabelColumnName,
                nameof(PredictedLabelColumnName), $"'{PredictedLabelColumnName}'", $"a column name other than ScoreColumnName '{ScoreColumnName}'");
        }
    }

    private readonly IHost _host;
    private readonly Options _options;

    internal DptClassifierTrainer(MLContext mlContext, Options options)
    {
        _host = ((IHostEnvironment)mlContext).Register(nameof(DptClassifierTrainer));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains the final classifier on the real rows of <paramref name="input"/> plus the generated images it carries.</summary>
    public DptClassifierTransformer Fit(IDataView input)
    {
        using var channel = _host.Start(nameof(Fit));
        var data = ClassifierTraining.ReadTrainingData(input, _options);
        var generated = (input as ISyntheticImageSource)?.SyntheticImages;
        GeneratedImageCounts? counts = null;
        if (generated is null)
        {
            channel.Warning(MessageSensitivity.None, "DptClassifierTrainer: the input carries no generated images (it is not a ConditionalDiffusionTransformer's output), so this trains on the real rows only.");
        }
        else
        {
            if (generated.Shape != data.Shape || generated.ClassNames.Count != data.ClassNames.Count)
                throw new ArgumentException($"The generated images are {generated.Shape} with {generated.ClassNames.Count} classes; the real rows are {data.Shape} with {data.ClassNames.Count}.", nameof(input));
            var received = GeneratedImageCounts.PerClass(generated);
            var filter = _options.GeneratedImageFilter ?? (_options.FilterWithPseudoLabeler ? StageOneClassifier(input) : null);
            if (filter is not null)
                generated = KeepAgreed(generated, filter, _options.GeneratedImageMinimumConfidence, channel);
            var kept = GeneratedImageCounts.PerClass(generated);
            generated = DropRejectedClasses(generated, received, _options.GeneratedClassMinimumPassRate, channel);
            generated = Take(generated, _options.GeneratedImagesPerClass);
            counts = new GeneratedImageCounts(received, kept, GeneratedImageCounts.PerClass(generated));
            if (generated.Count == 0)
            {
                channel.Warning(MessageSensitivity.None, "DptClassifierTrainer: no generated image is left to use, so this trains on the real rows only.");
                generated = null;
            }
        }
        var classifier = ClassifierTraining.Train(_host, channel, _options, data, nameof(DptClassifierTrainer), generated,
            _options.GeneratedImageWeight, _options.StartFrom);
        return new DptClassifierTransformer(classifier, _options.ImageColumnName, _options.MLImageChannels, _options.ScoreColumnName, _options.PredictedLabelColumnName,
            counts);
    }

    /// <summary>Checks the image and label columns and describes <c>Score</c> and <c>PredictedLabel</c>.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        ClassifierOutputs.OutputShape(ClassifierTraining.CheckLabel(inputSchema, _options.LabelColumnName), _options.ImageColumnName,
            _options.ScoreColumnName, _options.PredictedLabelColumnName, null);

    /// <summary>The classifier that scored the rows the generator learned from: stage 1's, when the chain passes it along.</summary>
    private static TrainedClassifier StageOneClassifier(IDataView input) =>
        (input as SyntheticImagesDataView)?.RowClassifier
        ?? throw new InvalidOperationException("DptClassifierTrainer: FilterWithPseudoLabeler needs the input to be a ConditionalDiffusionTransformer's output " +
            "over a PseudoLabelerTransformer's output (the DPT chain); otherwise set GeneratedImageFilter to the classifier to vet with.");

    /// <summary>
    /// The generated images whose class <paramref name="filter"/> predicts as the one they were generated for, with at
    /// least <paramref name="minimumConfidence"/> probability; within each class, the most probable first.
    /// </summary>
    internal static ImageDataset KeepAgreed(ImageDataset generated, TrainedClassifier filter, double minimumConfidence, IChannel channel)
    {
        int classes = generated.ClassNames.Count;
        if (filter.ClassNames.Count != classes || filter.Shape != generated.Shape)
            throw new ArgumentException($"GeneratedImageFilter classifies {filter.Shape} images into {filter.ClassNames.Count} classes; the generated images are {generated.Shape} with {classes} classes.");
        var probabilities = filter.PredictProbabilities(generated.Pixels, generated.Count);
        float OwnClass(int i) => probabilities[i * classes + generated.Labels[i]];
        var kept = Enumerable.Range(0, generated.Count)
            .Where(i => TrainedClassifier.MostProbable(probabilities.AsSpan(i * classes, classes)) == generated.Labels[i] && OwnClass(i) >= minimumConfidence)
            .OrderBy(i => generated.Labels[i]).ThenByDescending(OwnClass).ThenBy(i => i)
            .ToArray();
        var result = generated.Select(kept);
        channel.Info(MessageSensitivity.None, $"DptClassifierTrainer: GeneratedImageFilter keeps {kept.Length} of {generated.Count} generated images " +
            (minimumConfidence > 0 ? $"at probability {minimumConfidence} or more " : "") +
            $"(per class: {string.Join(", ", GeneratedImageCounts.PerClass(result))}).");
        return result;
    }

    /// <summary>
    /// <paramref name="kept"/> without the classes of which the filter kept less than <paramref name="minimumPassRate"/>
    /// of the <paramref name="received"/> images (per class).
    /// </summary>
    internal static ImageDataset DropRejectedClasses(ImageDataset kept, IReadOnlyList<int> received, double minimumPassRate, IChannel channel)
    {
        var keptPerClass = GeneratedImageCounts.PerClass(kept);
        var dropped = Enumerable.Range(0, received.Count).Where(c => keptPerClass[c] > 0 && keptPerClass[c] < minimumPassRate * received[c]).ToHashSet();
        if (dropped.Count == 0) return kept;
        channel.Info(MessageSensitivity.None, $"DptClassifierTrainer: below the pass rate {minimumPassRate}, the generated images of " +
            $"{string.Join(", ", dropped.Order().Select(c => $"{kept.ClassNames[c]} ({keptPerClass[c]} of {received[c]} passed the filter)"))} are not used.");
        return kept.Select(Enumerable.Range(0, kept.Count).Where(i => !dropped.Contains(kept.Labels[i])).ToArray());
    }

    /// <summary>The first <paramref name="perClass"/> images of each class (all when null).</summary>
    private static ImageDataset Take(ImageDataset generated, int? perClass)
    {
        if (perClass is null) return generated;
        var rows = Enumerable.Range(0, generated.ClassNames.Count)
            .SelectMany(c => Enumerable.Range(0, generated.Count).Where(i => generated.Labels[i] == c).Take(perClass.Value)).ToArray();
        Array.Sort(rows);
        return generated.Select(rows);
    }
}
