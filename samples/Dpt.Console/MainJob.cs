using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Dpt;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>Stage 1 on an IDX data set: supervised-only baseline and each chosen semi-supervised algorithm, same labels and seed.</summary>
internal sealed class MainJob
{
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
        var folder = _args.DataFolder is null ? FashionMnist.Locate() : _args.DataFolder;
        var (fullTrain, test) = IdxDataset.Load(folder, folder == _args.DataFolder ? null : FashionMnist.ClassNames);
        int trainImages = _args.TrainImages ?? (_args.Preset == Preset.Quick ? 6000 : fullTrain.Count);
        var train = trainImages >= fullTrain.Count ? fullTrain : fullTrain.Select(FewLabelSplit.ChooseLabeledRows(fullTrain.Labels, fullTrain.ClassNames.Count, trainImages / fullTrain.ClassNames.Count, _args.Seed));
        var fewLabels = FewLabelSplit.Apply(train, _args.LabelsPerClass, _args.Seed);
        Console.WriteLine($"Data: {folder}: {train.Count} training images ({_args.LabelsPerClass} labels per class, {fewLabels.Labels.Count(l => l >= 0)} in all), {test.Count} test images of {train.Shape}.");

        var ml = new MLContext(seed: _args.Seed);
        var trainView = fewLabels.ToDataView(ml);
        var testView = test.ToDataView(ml);
        var fullLabelView = train.ToDataView(ml);   // for pseudo-label accuracy against the hidden labels
        Directory.CreateDirectory(_args.OutputFolder);

        var metrics = new JsonObject
        {
            ["dataset"] = Path.GetFullPath(folder), ["labelsPerClass"] = _args.LabelsPerClass, ["preset"] = _args.Preset.ToString().ToLowerInvariant(),
            ["device"] = _args.Device.ToString().ToLowerInvariant(), ["seed"] = _args.Seed, ["trainImages"] = train.Count, ["testImages"] = test.Count,
        };
        var rows = new List<(string Name, double Accuracy, double PseudoAccuracy, double Seconds)>();
        foreach (var algorithm in new[] { SemiSupervisedAlgorithm.SupervisedOnly }.Concat(_args.Algorithms))
        {
            var options = Stage1Options(algorithm);
            var clock = Stopwatch.StartNew();
            using var model = ml.Dpt().PseudoLabeler(options).Fit(trainView);
            double seconds = clock.Elapsed.TotalSeconds;
            double accuracy = Accuracy(ml, model.Transform(testView));
            double pseudoAccuracy = Accuracy(ml, model.Transform(fullLabelView), useKnownLabels: false);
            string key = algorithm == SemiSupervisedAlgorithm.SupervisedOnly ? "supervisedOnly" : JsonNamingPolicy.CamelCase.ConvertName(algorithm.ToString());
            metrics[key] = new JsonObject { ["accuracy"] = accuracy, ["pseudoLabelAccuracy"] = pseudoAccuracy, ["seconds"] = seconds, ["steps"] = options.NumberOfSteps };
            model.Save(Path.Combine(_args.OutputFolder, $"stage1-{key}.dpt"));
            rows.Add((algorithm.ToString(), accuracy, pseudoAccuracy, seconds));
            Console.WriteLine($"{algorithm}: test accuracy {accuracy:P2}, pseudo-label accuracy {pseudoAccuracy:P2}, {seconds:F1} s");
        }
        metrics["totalSeconds"] = total.Elapsed.TotalSeconds;
        File.WriteAllText(Path.Combine(_args.OutputFolder, "metrics.json"), metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        Console.WriteLine();
        Console.WriteLine($"| stage 1 ({_args.LabelsPerClass} labels/class, seed {_args.Seed}) | test accuracy | pseudo-label accuracy | seconds |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine($"| {r.Name} | {r.Accuracy:P2} | {r.PseudoAccuracy:P2} | {r.Seconds:F1} |");
        Console.WriteLine($"metrics: {Path.GetFullPath(Path.Combine(_args.OutputFolder, "metrics.json"))}");
    }

    private PseudoLabeler.Options Stage1Options(SemiSupervisedAlgorithm algorithm)
    {
        bool quick = _args.Preset == Preset.Quick;
        return new PseudoLabeler.Options
        {
            Algorithm = algorithm,
            NumberOfSteps = _args.Steps ?? (quick ? 300 : 8000),
            BatchSize = quick ? 32 : 64,
            UnlabeledRatio = quick ? 3 : 7,
            NetworkWidth = quick ? 16 : 32,
            Device = _args.Device,
            Seed = _args.Seed,
            LogInterval = quick ? 50 : 500,
            Progress = p => Console.WriteLine("  " + p),
            CancellationToken = _cancel,
            KeepKnownLabels = false,
        };
    }

    /// <summary>Top-1 accuracy of the PseudoLabel column against the true label, through ML.NET's evaluator.</summary>
    private static double Accuracy(MLContext ml, IDataView scored, bool useKnownLabels = true) =>
        ml.MulticlassClassification.Evaluate(scored, labelColumnName: DefaultColumnNames.Label, scoreColumnName: DefaultColumnNames.Score,
            predictedLabelColumnName: DefaultColumnNames.PseudoLabel).MicroAccuracy;
}
