using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Dpt;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Evaluation;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// Stage 2 of the main job and its measures: trains the conditional diffusion model on a label column (stage 1's
/// pseudo-labels, or the true labels as a reference), then measures its Fréchet distance to the real test images
/// (with the floor between real train and test images), its classification accuracy score, and each sampler's
/// throughput, and how often that classifier reads each generated image as the class it was generated for
/// (<see cref="ClassFaithfulness"/>). The FD feature space is a classifier trained on every training label, which is
/// also the main job's fully supervised reference.
/// </summary>
internal sealed class GeneratorEvaluation
{
    private readonly CommandLine _args;
    private readonly Budget _budget;
    private readonly CancellationToken _cancel;
    private readonly ImageDataset _train, _test;
    private readonly string _checkpoints;
    private readonly MLContext _ml;
    private FrechetDistance? _fd;
    private TrainedClassifier? _reference;
    private double _floor;
    private ImageDataset? _testSample;
    private JsonObject? _fullySupervised;

    public GeneratorEvaluation(CommandLine args, Budget budget, CancellationToken cancel, ImageDataset train, ImageDataset test, string checkpoints)
    {
        _args = args;
        _budget = budget;
        _cancel = cancel;
        _train = train;
        _test = test;
        _checkpoints = checkpoints;
        _ml = LibraryLog.NewContext(args.Seed, args.Verbose);
    }

    /// <summary>Test accuracy and seconds of the classifier trained on every training label (trained on first use).</summary>
    public JsonObject FullySupervised
    {
        get
        {
            Fd();
            return (JsonObject)_fullySupervised!.DeepClone();
        }
    }

    /// <summary>The classifier trained on every training label (trained on first use); it stays owned by this object.</summary>
    public TrainedClassifier FullySupervisedClassifier
    {
        get
        {
            Fd();
            return _reference!;
        }
    }

    /// <summary>
    /// The fully supervised reference's recipe (a supervised SmallCnn) trained on <paramref name="labelColumn"/> of
    /// every row of <paramref name="data"/>, with its seconds; the caller disposes it.
    /// </summary>
    public (PseudoLabelerTransformer Classifier, double Seconds) TrainSupervised(IDataView data, string labelColumn)
    {
        var clock = Stopwatch.StartNew();
        var options = ClassifierOptions(_budget.ReferenceSteps);
        options.KeepKnownLabels = false;
        options.LabelColumnName = labelColumn;
        var classifier = _ml.Dpt().PseudoLabeler(options).Fit(data);
        return (classifier, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Trains a generator on <paramref name="labeled"/> conditioned on <paramref name="labelColumn"/> (only the most
    /// confident <paramref name="conditionedFraction"/> of each class by the PseudoLabeler's confidence, when below 1);
    /// the caller disposes it.
    /// </summary>
    public (ConditionalDiffusionTransformer Generator, double Seconds) Train(IDataView labeled, string labelColumn, double conditionedFraction = 1)
    {
        var clock = Stopwatch.StartNew();
        var stage2 = _ml.Dpt().ConditionalDiffusionAugmenter(new ConditionalDiffusionAugmenter.Options
        {
            LabelColumnName = labelColumn, ConditionedFraction = conditionedFraction, Backbone = DenoiserBackbone.UNet, Size = _budget.DenoiserSize,
            NumberOfSteps = _budget.DiffusionSteps, BatchSize = _budget.DiffusionBatch, LearningRate = _budget.DiffusionLearningRate,
            ImagesPerClass = Math.Max(1, _budget.EvaluationImages / _train.ClassNames.Count), Sampler = _args.Sampler, SamplingSteps = _args.SamplingSteps, GuidanceScale = _args.GuidanceScale, Device = _args.Device, Seed = _args.Seed,
            LogInterval = 250, Progress = p => Console.WriteLine("    " + p), CancellationToken = _cancel, CheckpointFolder = _checkpoints,
        }).Fit(labeled);
        return (stage2, clock.Elapsed.TotalSeconds);
    }

    /// <summary>FD (with floor), CAS, class faithfulness and sampling speed of a trained generator; its grids and weights go to <paramref name="folder"/>.</summary>
    public JsonObject Measure(ConditionalDiffusionTransformer stage2, double seconds, string folder)
    {
        var fd = Fd();
        var generated = stage2.SyntheticImages;
        double distance = fd.Compute(generated.Pixels, generated.Count, _testSample!.Pixels, _testSample.Count);
        double cas = ClassificationAccuracyScore.Compute(_ml, generated, _test, ClassifierOptions(_budget.CasSteps));
        var faithful = ClassFaithfulness.Compute(_reference!, generated);
        stage2.Generator.SaveGrids(folder, perClass: 20, seed: _args.Seed);
        stage2.Generator.Save(Path.Combine(folder, "generator.dpt"));
        var throughput = new JsonObject();
        foreach (var sampler in new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmSolverPlusPlus })
        {
            var sampling = Stopwatch.StartNew();
            stage2.Generator.Generate(0, _budget.SamplingBenchmarkImages, _args.Seed, sampler, steps: 25);
            throughput[sampler.ToString()] = _budget.SamplingBenchmarkImages / sampling.Elapsed.TotalSeconds;
        }
        Console.WriteLine($"  Generator: FD {distance:F3} (floor {_floor:F3}), CAS {cas:P2}, faithful {faithful.Overall:P2} " +
            $"(per class {ResultsTable.PerClassPercent(faithful.PerClass)} %), {seconds:F0} s training + generation; images/s at 25 steps: " +
            string.Join(", ", throughput.Select(kv => $"{kv.Key} {kv.Value!.GetValue<double>():F1}")));
        return new JsonObject
        {
            ["fd"] = distance, ["fdFloor"] = _floor, ["cas"] = cas, ["faithful"] = faithful.Overall,
            ["faithfulPerClass"] = new JsonArray(faithful.PerClass.Select(f => (JsonNode?)f).ToArray()), ["seconds"] = seconds, ["steps"] = _budget.DiffusionSteps,
            ["size"] = _budget.DenoiserSize.ToString(), ["sampler"] = stage2.Generator.Sampler.ToString(), ["samplingSteps"] = stage2.Generator.SamplingSteps, ["guidanceScale"] = stage2.Generator.GuidanceScale, ["generatedImages"] = generated.Count, ["samplingImagesPerSecond"] = throughput,
        };
    }

    /// <summary>The FD feature space: a classifier trained on every label of the training set, made once.</summary>
    private FrechetDistance Fd()
    {
        if (_fd is not null) return _fd;
        var (reference, seconds) = TrainSupervised(_train.ToDataView(_ml), DefaultColumnNames.Label);
        double accuracy = _ml.MulticlassClassification.Evaluate(reference.Transform(_test.ToDataView(_ml)), "Label", "Score", "PseudoLabel").MicroAccuracy;
        Console.WriteLine($"  Fully supervised reference (all {_train.Count} labels; also the FD feature space): test accuracy {accuracy:P2}, {seconds:F0} s");
        _fullySupervised = new JsonObject { ["accuracy"] = accuracy, ["labels"] = _train.Count, ["steps"] = _budget.ReferenceSteps, ["seconds"] = seconds };
        _reference = reference.Classifier;
        _fd = new FrechetDistance(_reference);
        _testSample = Sample(_test);
        var trainSample = Sample(_train);
        _floor = _fd.Compute(trainSample.Pixels, trainSample.Count, _testSample.Pixels, _testSample.Count);
        return _fd;
    }

    private PseudoLabeler.Options ClassifierOptions(int steps) => new()
    {
        Algorithm = SemiSupervisedAlgorithm.SupervisedOnly, NumberOfSteps = steps, BatchSize = 64, NetworkWidth = _budget.ClassifierWidth,
        Device = _args.Device, Seed = _args.Seed, LogInterval = 10_000, CancellationToken = _cancel, CheckpointFolder = _checkpoints,
    };

    private ImageDataset Sample(ImageDataset data) =>
        data.Select(FewLabelSplit.ChooseLabeledRows(data.Labels, data.ClassNames.Count, Math.Max(1, _budget.EvaluationImages / data.ClassNames.Count), _args.Seed));
}
