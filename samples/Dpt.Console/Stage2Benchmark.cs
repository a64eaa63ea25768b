using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Dpt;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Evaluation;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// Stage 2 of the main job: trains the conditional diffusion model on stage 1's pseudo-labels (and, as a
/// reference, on the true labels), then measures its Fréchet distance to the real test images (with the floor
/// between real train and test images), its classification accuracy score, and each sampler's throughput.
/// </summary>
internal sealed class Stage2Benchmark
{
    private const int EvaluationImages = 2000;
    private readonly CommandLine _args;
    private readonly CancellationToken _cancel;
    private readonly ImageDataset _train, _test;
    private readonly MLContext _ml;
    private FrechetDistance? _fd;
    private double _floor;
    private ImageDataset? _testSample;

    public Stage2Benchmark(CommandLine args, CancellationToken cancel, ImageDataset train, ImageDataset test)
    {
        _args = args;
        _cancel = cancel;
        _train = train;
        _test = test;
        _ml = new MLContext(seed: args.Seed);
    }

    private bool Quick => _args.Preset == Preset.Quick;

    /// <summary>The FD feature space: a classifier trained on every label of the training set, made once.</summary>
    private FrechetDistance Fd()
    {
        if (_fd is not null) return _fd;
        var clock = Stopwatch.StartNew();
        var reference = _ml.Dpt().PseudoLabeler(new PseudoLabeler.Options
        {
            Algorithm = SemiSupervisedAlgorithm.SupervisedOnly, NumberOfSteps = Quick ? 1500 : 4000, BatchSize = 64, NetworkWidth = Quick ? 16 : 32,
            Device = _args.Device, Seed = _args.Seed, LogInterval = 10_000, CancellationToken = _cancel,
        }).Fit(_train.ToDataView(_ml));
        double accuracy = _ml.MulticlassClassification.Evaluate(reference.Transform(_test.ToDataView(_ml)), "Label", "Score", "PseudoLabel").MicroAccuracy;
        Console.WriteLine($"  FD reference classifier (all {_train.Count} labels): test accuracy {accuracy:P2}, {clock.Elapsed.TotalSeconds:F0} s");
        _fd = new FrechetDistance(reference.Classifier);
        _testSample = Sample(_test);
        _floor = _fd.Compute(Sample(_train).Pixels, EvaluationImages, _testSample.Pixels, EvaluationImages);
        return _fd;
    }

    /// <summary>
    /// Trains a generator on <paramref name="labeled"/> conditioned on <paramref name="labelColumn"/> and measures it.
    /// Returns the metrics and the fitted stage 2 (the caller disposes it), whose <c>Transform</c> feeds stage 3.
    /// </summary>
    public (JsonObject Metrics, ConditionalDiffusionTransformer Stage2) Run(IDataView labeled, string labelColumn, string name, string output)
    {
        var fd = Fd();
        var options = new ConditionalDiffusionAugmenter.Options
        {
            LabelColumnName = labelColumn, Backbone = DenoiserBackbone.UNet, Size = Quick ? DenoiserSize.Tiny : DenoiserSize.Small,
            NumberOfSteps = _args.DiffusionSteps ?? (Quick ? 1500 : 10_000), BatchSize = Quick ? 64 : 128, LearningRate = Quick ? 1e-3 : 2e-4,
            ImagesPerClass = EvaluationImages / _train.ClassNames.Count, Device = _args.Device, Seed = _args.Seed, LogInterval = 250,
            Progress = p => Console.WriteLine("    " + p), CancellationToken = _cancel,
        };
        var clock = Stopwatch.StartNew();
        var stage2 = _ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(labeled);
        double seconds = clock.Elapsed.TotalSeconds;
        var generated = stage2.SyntheticImages;
        double distance = fd.Compute(generated.Pixels, generated.Count, _testSample!.Pixels, EvaluationImages);
        double cas = ClassificationAccuracyScore.Compute(_ml, generated, _test, new PseudoLabeler.Options
        {
            NumberOfSteps = Quick ? 1000 : 3000, BatchSize = 64, NetworkWidth = Quick ? 16 : 32, Device = _args.Device, Seed = _args.Seed,
            LogInterval = 10_000, CancellationToken = _cancel,
        });
        var folder = Path.Combine(output, name);
        stage2.Generator.SaveGrids(folder, perClass: 20, seed: _args.Seed);
        stage2.Generator.Save(Path.Combine(folder, "generator.dpt"));
        var throughput = new JsonObject();
        foreach (var sampler in new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmSolverPlusPlus })
        {
            int count = Quick ? 100 : 1000;
            var sampling = Stopwatch.StartNew();
            stage2.Generator.Generate(0, count, _args.Seed, sampler, steps: 25);
            throughput[sampler.ToString()] = count / sampling.Elapsed.TotalSeconds;
        }
        Console.WriteLine($"  {name}: FD {distance:F3} (floor {_floor:F3}), CAS {cas:P2}, {seconds:F0} s training + generation; images/s at 25 steps: " +
            string.Join(", ", throughput.Select(kv => $"{kv.Key} {kv.Value!.GetValue<double>():F1}")));
        return (new JsonObject
        {
            ["fd"] = distance, ["fdFloor"] = _floor, ["cas"] = cas, ["seconds"] = seconds, ["steps"] = options.NumberOfSteps,
            ["size"] = options.Size.ToString(), ["samplingImagesPerSecond"] = throughput,
        }, stage2);
    }

    private ImageDataset Sample(ImageDataset data) =>
        data.Select(FewLabelSplit.ChooseLabeledRows(data.Labels, data.ClassNames.Count, EvaluationImages / data.ClassNames.Count, _args.Seed));
}
