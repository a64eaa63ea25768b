using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Dpt;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Evaluation;
using Microsoft.ML.Dpt.Models.Encoders;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.SelfSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// The main job on an IDX data set, for each label count: the supervised-only baseline, stage 1 (each chosen
/// semi-supervised algorithm; the last one pseudo-labels), stage 2 (the generator and its FD/CAS) and stage 3 (the
/// classifier retrained on real plus generated images), all with the same labels, seed and budget. Writes
/// metrics.json, the models and sample grids per label count, and results.md with one row per label count.
/// Every training run checkpoints to DIR/checkpoints, so the same command run again continues where it stopped.
/// </summary>
internal sealed class MainJob
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private readonly CommandLine _args;
    private readonly CancellationToken _cancel;

    public MainJob(CommandLine args, CancellationToken cancel)
    {
        _args = args;
        _cancel = cancel;
    }

    public void Run()
    {
        var total = Stopwatch.StartNew();
        var folder = _args.DataFolder ?? FashionMnist.Locate();
        var (fullTrain, test) = IdxDataset.Load(folder, _args.DataFolder is null ? FashionMnist.ClassNames : null);
        int classes = fullTrain.ClassNames.Count;
        var budget = Budget.For(_args, fullTrain.Count);
        var train = budget.TrainImages == fullTrain.Count ? fullTrain
            : fullTrain.Select(FewLabelSplit.ChooseLabeledRows(fullTrain.Labels, classes, budget.TrainImages / classes, _args.Seed));
        Console.WriteLine($"Data: {folder}: {train.Count} training images, {test.Count} test images of {train.Shape}, {classes} classes; " +
            $"preset {Name(_args.Preset)}, stages 1-{_args.Stages}, seed {_args.Seed}.");
        var checkpoints = _args.CheckpointFolder ?? Path.Combine(_args.OutputFolder, "checkpoints");
        var generators = _args.Stages >= 2 ? new GeneratorEvaluation(_args, budget, _cancel, train, test, checkpoints) : null;

        var results = new List<JsonObject>();
        foreach (var labelsPerClass in _args.LabelsPerClass)
        {
            var output = _args.LabelsPerClass.Length == 1 ? _args.OutputFolder : Path.Combine(_args.OutputFolder, $"labels-{labelsPerClass}");
            var metrics = RunOneLabelCount(folder, train, test, labelsPerClass, budget, output, checkpoints, generators);
            File.WriteAllText(Path.Combine(output, "metrics.json"), metrics.ToJsonString(Indented));
            results.Add(metrics);
        }
        if (generators is not null && _args.Stage2Reference)
        {
            // The paper's comparison: a generator conditioned on every true label.
            var ml = LibraryLog.NewContext(_args.Seed, _args.Verbose);
            var (reference, seconds) = generators.Train(train.ToDataView(ml), DefaultColumnNames.Label);
            using (reference)
            {
                var measures = generators.Measure(reference, seconds, Path.Combine(_args.OutputFolder, "generator-true-labels"));
                File.WriteAllText(Path.Combine(_args.OutputFolder, "generator-true-labels.json"), measures.ToJsonString(Indented));
            }
        }
        var summary = $"DPT on {folder} ({train.Count} train / {test.Count} test images), preset {Name(_args.Preset)}, seed {_args.Seed}, " +
            $"device {Name(_args.Device)}, {total.Elapsed.TotalSeconds:F0} s in all.\n\n{ResultsTable.Markdown(results)}";
        Directory.CreateDirectory(_args.OutputFolder);
        File.WriteAllText(Path.Combine(_args.OutputFolder, "results.md"), summary);
        Console.WriteLine();
        Console.WriteLine(summary);
    }

    private JsonObject RunOneLabelCount(string folder, ImageDataset train, ImageDataset test, int labelsPerClass, Budget budget,
        string output, string checkpoints, GeneratorEvaluation? generators)
    {
        var started = Stopwatch.StartNew();
        var fewLabels = FewLabelSplit.Apply(train, labelsPerClass, _args.Seed);
        Console.WriteLine($"{labelsPerClass} labels per class ({fewLabels.Labels.Count(l => l >= 0)} labeled, {train.Count} unlabeled images):");
        var ml = LibraryLog.NewContext(_args.Seed, _args.Verbose);
        var trainView = fewLabels.ToDataView(ml);
        var testView = test.ToDataView(ml);
        var hiddenLabels = train.ToDataView(ml);   // the training images with every label, to score the pseudo-labels
        Directory.CreateDirectory(output);
        var metrics = new JsonObject
        {
            ["dataset"] = Path.GetFullPath(folder), ["labelsPerClass"] = labelsPerClass, ["preset"] = Name(_args.Preset),
            ["device"] = Name(_args.Device), ["seed"] = _args.Seed, ["trainImages"] = train.Count, ["testImages"] = test.Count,
            ["classifierWidth"] = budget.ClassifierWidth,
        };

        // Stage 1 and its baseline: each algorithm on the same labels; the last one's pseudo-labels go on.
        PseudoLabelerTransformer? stage1 = null;
        IDataView? stage1ScoredTest = null;   // kept for stage 3's paired comparison, so the test images are scored once
        foreach (var method in new[] { Stage1Method.SupervisedOnly }.Concat(_args.Algorithms))
        {
            var clock = Stopwatch.StartNew();
            var options = ClassifierOptions<PseudoLabeler.Options>(method, budget, checkpoints);
            var model = ml.Dpt().PseudoLabeler(options).Fit(trainView);
            double seconds = clock.Elapsed.TotalSeconds;
            var scoredTest = ml.Data.Cache(model.Transform(testView));
            var testMetrics = Evaluate(ml, scoredTest);
            double accuracy = testMetrics.MicroAccuracy;
            double pseudoAccuracy = Evaluate(ml, model.Transform(hiddenLabels)).MicroAccuracy;
            string key = method.Key;
            var result = new JsonObject
            {
                ["accuracy"] = accuracy, ["pseudoLabelAccuracy"] = pseudoAccuracy, ["seconds"] = seconds, ["steps"] = budget.ClassifierSteps,
                ["testConfusion"] = Confusion(testMetrics),
            };
            if (options.Pretraining is { } pretraining)
                result["pretraining"] = new JsonObject
                {
                    ["steps"] = pretraining.NumberOfSteps, ["batchSize"] = pretraining.BatchSize,
                    ["temperature"] = pretraining.Temperature, ["minCropScale"] = pretraining.MinCropScale,
                };
            metrics[key] = result;
            model.Save(Path.Combine(output, $"stage1-{key}.dpt"));
            Console.WriteLine($"  {method}: test accuracy {accuracy:P2} (per class {ResultsTable.PerClassPercent(testMetrics.ConfusionMatrix.PerClassRecall)} %), pseudo-label accuracy {pseudoAccuracy:P2}, {seconds:F1} s");
            if (method == _args.Algorithms[^1])
            {
                metrics["stage1"] = new JsonObject
                {
                    ["algorithm"] = method.CommandName, ["accuracy"] = accuracy, ["pseudoLabelAccuracy"] = pseudoAccuracy, ["seconds"] = seconds,
                    ["testConfusion"] = Confusion(testMetrics),
                };
                stage1 = model;
                stage1ScoredTest = scoredTest;
            }
            else
            {
                model.Dispose();
            }
        }

        using (stage1)
        {
            if (generators is not null)
            {
                // Stage 2 trains on every training image with stage 1's pseudo-labels (known labels kept; below
                // --conditioned-fraction 1 only each class's most confident ones condition it).
                var pseudoLabeled = stage1!.Transform(trainView);
                var (stage2, seconds2) = generators.Train(pseudoLabeled, DefaultColumnNames.PseudoLabel, _args.ConditionedFraction);
                using (stage2)
                {
                    var measures = generators.Measure(stage2, seconds2, output);
                    measures["conditionedFraction"] = _args.ConditionedFraction;
                    metrics["stage2"] = measures;
                    metrics["fullySupervised"] = generators.FullySupervised;
                    if (_args.Stages >= 3)
                        metrics["stage3"] = RunStage3(ml, stage2.Transform(pseudoLabeled), testView, budget, output, checkpoints, stage1!, generators, stage1ScoredTest!, metrics["stage1"]!["accuracy"]!.GetValue<double>());
                }
            }
        }
        metrics["totalSeconds"] = started.Elapsed.TotalSeconds;
        return metrics;
    }

    /// <summary>
    /// Stage 3, the paper's recipes: stage 1's method and budget from scratch with the generated images added to the
    /// labeled set, or for a frozen-encoder head, the head refitted on labeled plus generated features (the encoder
    /// comes back from stage 1's pretraining checkpoint).
    /// </summary>
    private JsonObject RunStage3(MLContext ml, IDataView withGenerated, IDataView testView, Budget budget, string output, string checkpoints,
        PseudoLabelerTransformer stage1, GeneratorEvaluation generators, IDataView stage1ScoredTest, double stage1Accuracy)
    {
        var options = ClassifierOptions<DptClassifierTrainer.Options>(_args.Algorithms[^1], budget, checkpoints);
        options.GeneratedImagesPerClass = _args.GeneratedPerClass;
        options.GeneratedImageWeight = _args.GeneratedWeight;
        options.StartFrom = _args.FineTune ? stage1.Classifier : null;
        using var pseudoLabelFilter = _args.FilterGenerated && _args.FilterWith == FilterClassifier.PseudoLabels
            ? TrainPseudoLabelFilter(generators, withGenerated) : null;
        var (filter, filterName) = _args.FilterWith switch
        {
            FilterClassifier.PseudoLabels => (pseudoLabelFilter!.Classifier, "the pseudo-label classifier's filter"),
            FilterClassifier.TrueLabels => (generators.FullySupervisedClassifier, "the fully supervised reference's filter"),
            _ => (stage1.Classifier, "stage 1's filter"),
        };
        options.GeneratedImageFilter = _args.FilterGenerated ? filter : null;
        options.GeneratedImageMinimumConfidence = _args.GeneratedConfidence;
        options.GeneratedClassMinimumPassRate = _args.GeneratedPassRate;
        var clock = Stopwatch.StartNew();
        using var stage3 = ml.Dpt().DptClassifierTrainer(options).Fit(withGenerated);
        double seconds = clock.Elapsed.TotalSeconds;
        var generated = stage3.GeneratedImages;
        if (generated is not null)
            Console.WriteLine($"    generated images: {generated.TotalReceived} made" +
                (_args.FilterGenerated ? $", {generated.TotalKept} kept by {filterName} (per class {string.Join(" ", generated.Kept)})" : "") +
                $", {generated.TotalUsed} used (per class {string.Join(" ", generated.Used)})");
        var scoredTest = ml.Data.Cache(stage3.Transform(testView));
        var testMetrics = Evaluate(ml, scoredTest, DefaultColumnNames.PredictedLabel);
        double accuracy = testMetrics.MicroAccuracy;
        // Whether stage 3 beats stage 1 is decided by the test images only one of them gets right.
        var paired = PairedAccuracy.Compare(stage1ScoredTest, scoredTest);
        stage3.Save(Path.Combine(output, "stage3.dpt"));
        Console.WriteLine($"  DPT stage 3: test accuracy {accuracy:P2} ({accuracy - stage1Accuracy:+0.00%;-0.00%} over stage 1; test images right only in stage 1: " +
            $"{paired.OnlyFirstRight}, only in stage 3: {paired.OnlySecondRight}, McNemar z {paired.Z:+0.00;-0.00}, p {paired.PValue:G2}), {seconds:F1} s");
        return new JsonObject
        {
            ["accuracy"] = accuracy, ["seconds"] = seconds, ["steps"] = options.NumberOfSteps,
            ["generatedPerClass"] = _args.GeneratedPerClass, ["generatedWeight"] = _args.GeneratedWeight, ["fineTuned"] = _args.FineTune,
            ["filteredByStage1"] = _args.FilterGenerated && _args.FilterWith == FilterClassifier.Stage1,
            ["filterClassifier"] = _args.FilterGenerated ? _args.FilterWith.ToString() : null,
            ["minimumFilterProbability"] = _args.GeneratedConfidence, ["minimumClassPassRate"] = _args.GeneratedPassRate,
            ["generatedImages"] = generated is null ? null : new JsonObject
            {
                ["made"] = Counts(generated.Received), ["kept"] = Counts(generated.Kept), ["used"] = Counts(generated.Used),
            },
            ["pairedWithStage1"] = new JsonObject
            {
                ["bothRight"] = paired.BothRight, ["onlyStage1Right"] = paired.OnlyFirstRight, ["onlyStage3Right"] = paired.OnlySecondRight,
                ["z"] = paired.Z, ["pValue"] = paired.PValue,
            },
            ["testConfusion"] = Confusion(testMetrics),
        };
    }

    /// <summary>
    /// The filter of --filter-with pseudolabels: the fully supervised reference's recipe trained on stage 1's
    /// pseudo-labels of every training image (the generated images in <paramref name="withGenerated"/> are not read).
    /// It judges images by their pixels, as the generator learnt them, where stage 1 reads contrastive features.
    /// </summary>
    private static PseudoLabelerTransformer TrainPseudoLabelFilter(GeneratorEvaluation generators, IDataView withGenerated)
    {
        var (filter, seconds) = generators.TrainSupervised(withGenerated, DefaultColumnNames.PseudoLabel);
        Console.WriteLine($"    pseudo-label classifier for the filter (every training image, stage 1's pseudo-labels): {seconds:F0} s");
        return filter;
    }

    private T ClassifierOptions<T>(Stage1Method method, Budget budget, string checkpoints) where T : SemiSupervisedTrainerOptions, new()
    {
        var options = new T
        {
            Algorithm = method.Algorithm, Head = method.Head, NumberOfSteps = budget.ClassifierSteps, BatchSize = budget.ClassifierBatch,
            UnlabeledRatio = budget.UnlabeledRatio, NetworkWidth = budget.ClassifierWidth, Device = _args.Device, Seed = _args.Seed, LogInterval = 500,
            Pretraining = method.Pretrained ? PretrainingOptions(budget) : null,
            Encoder = method.ImageNetEncoder ? OnnxImageEncoder.ResNet18() : null, PropagationNeighbors = _args.PropagationNeighbors,
            PropagationPixelWeight = _args.PixelWeight, PropagationGradientWeight = _args.GradientWeight, PropagationPatchWeight = _args.PatchWeight,
            PropagationBalancesClasses = _args.BalanceClasses, PropagationLearnsMetric = _args.LearnMetric,
            PropagatedLabelFraction = method.PropagatedLabels ? _args.PropagatedFraction : 0, PropagateAfterFineTuning = method.PropagateAfterFineTuning,
            Progress = p => Console.WriteLine("    " + p), CancellationToken = _cancel, CheckpointFolder = checkpoints,
        };
        // The head's histograms, the feature grid and mirror averaging apply only where the method reads frozen features; the options
        // refuse them elsewhere, so the console's defaults are passed only where they are read.
        options.HeadGradientWeight = options.FitsFrozenFeatureHead ? _args.HeadGradientWeight : 0;
        if (_args.HeadL2 is { } l2 && options.FitsLogisticRegressionHead) options.HeadL2Regularization = l2;   // not the supervised-only baseline
        options.FeatureGrid = options.ReadsFrozenCnnFeatures ? _args.FeatureGrid : 0;
        options.MirrorAveragedFeatures = options.ReadsFrozenFeatures && _args.MirrorFeatures;
        return options;
    }

    private ContrastivePretrainingOptions PretrainingOptions(Budget budget)
    {
        var options = new ContrastivePretrainingOptions { NumberOfSteps = budget.PretrainingSteps, BatchSize = budget.PretrainingBatch };
        if (_args.PretrainingTemperature is { } temperature) options.Temperature = temperature;
        if (_args.MinCropScale is { } crop) options.MinCropScale = crop;
        return options;
    }

    /// <summary>
    /// ML.NET's multiclass metrics, whose accuracy takes the argmax of <c>Score</c>: the model's own prediction, even on
    /// rows whose known label the PseudoLabel column keeps.
    /// </summary>
    private static MulticlassClassificationMetrics Evaluate(MLContext ml, IDataView scored, string predictedLabelColumn = DefaultColumnNames.PseudoLabel) =>
        ml.MulticlassClassification.Evaluate(scored, labelColumnName: DefaultColumnNames.Label, scoreColumnName: DefaultColumnNames.Score,
            predictedLabelColumnName: predictedLabelColumn);

    /// <summary>
    /// The test confusion matrix as rows of counts, row = true class, column = predicted class: with one label per
    /// class a single atypical labeled image can hand its class to another, which the accuracy alone does not show.
    /// </summary>
    private static JsonArray Confusion(MulticlassClassificationMetrics metrics) =>
        new(metrics.ConfusionMatrix.Counts.Select(row => (JsonNode?)new JsonArray(row.Select(count => (JsonNode?)(int)count).ToArray())).ToArray());

    /// <summary>Per-class counts as a JSON array, class order.</summary>
    private static JsonArray Counts(IEnumerable<int> counts) => new(counts.Select(count => (JsonNode?)count).ToArray());

    private static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
}
