using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Dpt;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Dpt.ConsoleApp;

/// <summary>
/// Stage 1 on an IDX data set: the supervised-only baseline and each chosen semi-supervised algorithm on the same
/// labels, seed and budget. Writes metrics.json per label count and one Markdown table for all.
/// </summary>
internal sealed class MainJob
{
    private readonly CommandLine _args;
    private readonly CancellationToken _cancel;

    public MainJob(CommandLine args, CancellationToken cancel)
    {
        _args = args;
        _cancel = cancel;
    }

    private bool Quick => _args.Preset == Preset.Quick;

    public void Run()
    {
        var total = Stopwatch.StartNew();
        var folder = _args.DataFolder ?? FashionMnist.Locate();
        var (fullTrain, test) = IdxDataset.Load(folder, _args.DataFolder is null ? FashionMnist.ClassNames : null);
        int classes = fullTrain.ClassNames.Count;
        int trainImages = Math.Min(_args.TrainImages ?? (Quick ? 6000 : fullTrain.Count), fullTrain.Count);
        var train = trainImages == fullTrain.Count ? fullTrain
            : fullTrain.Select(FewLabelSplit.ChooseLabeledRows(fullTrain.Labels, classes, trainImages / classes, _args.Seed));
        Console.WriteLine($"Data: {folder}: {train.Count} training images, {test.Count} test images of {train.Shape}, {classes} classes; preset {_args.Preset}, seed {_args.Seed}.");

        var stage2 = _args.Stage2 ? new Stage2Benchmark(_args, _cancel, train, test) : null;
        var stage2Table = new StringBuilder("| generator conditioned on | FD | FD floor | CAS | seconds |\n|---|---|---|---|---|\n");
        if (stage2 is not null && _args.Stage2Reference)
        {
            var ml = new MLContext(seed: _args.Seed);
            var (reference, referenceModel) = stage2.Run(train.ToDataView(ml), DefaultColumnNames.Label, "generator-true-labels", _args.OutputFolder);
            referenceModel.Dispose();
            stage2Table.AppendLine(Stage2Row("true labels (all)", reference));
            File.WriteAllText(Path.Combine(_args.OutputFolder, "stage2-true-labels.json"), reference.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        var table = new StringBuilder();
        table.AppendLine($"| labels/class | method | test accuracy | pseudo-label accuracy | steps | seconds |");
        table.AppendLine("|---|---|---|---|---|---|");
        foreach (var labelsPerClass in _args.LabelsPerClass)
        {
            var output = _args.LabelsPerClass.Length == 1 ? _args.OutputFolder : Path.Combine(_args.OutputFolder, $"labels-{labelsPerClass}");
            foreach (var row in RunOneLabelCount(folder, train, test, labelsPerClass, output, stage2, stage2Table))
                table.AppendLine($"| {labelsPerClass} | {row.Method} | {row.Accuracy:P2} | {(double.IsNaN(row.PseudoAccuracy) ? "" : row.PseudoAccuracy.ToString("P2"))} | {row.Steps} | {row.Seconds:F0} |");
        }
        if (stage2 is not null) table.AppendLine().Append(stage2Table);
        var summary = $"Stage 1 on {folder} ({train.Count} train / {test.Count} test images), preset {_args.Preset.ToString().ToLowerInvariant()}, seed {_args.Seed}, " +
            $"device {_args.Device.ToString().ToLowerInvariant()}, {total.Elapsed.TotalSeconds:F0} s in all.\n\n{table}";
        Directory.CreateDirectory(_args.OutputFolder);
        File.WriteAllText(Path.Combine(_args.OutputFolder, "stage1-results.md"), summary);
        Console.WriteLine();
        Console.WriteLine(summary);
    }

    private static string Stage2Row(string name, JsonObject m) =>
        $"| {name} | {m["fd"]!.GetValue<double>():F3} | {m["fdFloor"]!.GetValue<double>():F3} | {m["cas"]!.GetValue<double>():P2} | {m["seconds"]!.GetValue<double>():F0} |";

    private List<(string Method, double Accuracy, double PseudoAccuracy, int Steps, double Seconds)> RunOneLabelCount(
        string folder, ImageDataset train, ImageDataset test, int labelsPerClass, string output, Stage2Benchmark? stage2, StringBuilder stage2Table)
    {
        var started = Stopwatch.StartNew();
        var fewLabels = FewLabelSplit.Apply(train, labelsPerClass, _args.Seed);
        Console.WriteLine($"{labelsPerClass} labels per class ({fewLabels.Labels.Count(l => l >= 0)} labeled, {train.Count} unlabeled images):");
        var ml = new MLContext(seed: _args.Seed);
        var trainView = fewLabels.ToDataView(ml);
        var testView = test.ToDataView(ml);
        var hiddenLabels = train.ToDataView(ml);   // the training images with every label, to score the pseudo-labels
        Directory.CreateDirectory(output);

        var metrics = new JsonObject
        {
            ["dataset"] = Path.GetFullPath(folder), ["labelsPerClass"] = labelsPerClass, ["preset"] = _args.Preset.ToString().ToLowerInvariant(),
            ["device"] = _args.Device.ToString().ToLowerInvariant(), ["seed"] = _args.Seed, ["trainImages"] = train.Count, ["testImages"] = test.Count,
        };
        var rows = new List<(string, double, double, int, double)>();
        foreach (var algorithm in new[] { SemiSupervisedAlgorithm.SupervisedOnly }.Concat(_args.Algorithms))
        {
            var options = Stage1Options(algorithm);
            var clock = Stopwatch.StartNew();
            using var model = ml.Dpt().PseudoLabeler(options).Fit(trainView);
            bool lastAlgorithm = algorithm == _args.Algorithms[^1];
            double seconds = clock.Elapsed.TotalSeconds;
            double accuracy = Accuracy(ml, model.Transform(testView));
            double pseudoAccuracy = Accuracy(ml, model.Transform(hiddenLabels));
            string key = algorithm == SemiSupervisedAlgorithm.SupervisedOnly ? "supervisedOnly" : JsonNamingPolicy.CamelCase.ConvertName(algorithm.ToString());
            metrics[key] = new JsonObject { ["accuracy"] = accuracy, ["pseudoLabelAccuracy"] = pseudoAccuracy, ["seconds"] = seconds, ["steps"] = options.NumberOfSteps };
            if (lastAlgorithm && algorithm != SemiSupervisedAlgorithm.SupervisedOnly)
                metrics["stage1"] = new JsonObject { ["algorithm"] = algorithm.ToString(), ["accuracy"] = accuracy, ["pseudoLabelAccuracy"] = pseudoAccuracy, ["seconds"] = seconds };
            model.Save(Path.Combine(output, $"stage1-{key}.dpt"));
            rows.Add((algorithm.ToString(), accuracy, pseudoAccuracy, options.NumberOfSteps, seconds));
            Console.WriteLine($"  {algorithm}: test accuracy {accuracy:P2}, pseudo-label accuracy {pseudoAccuracy:P2}, {seconds:F1} s");
            if (stage2 is not null && lastAlgorithm)
            {
                // Stage 2 trains on every training image with stage 1's pseudo-labels (known labels kept).
                var pseudoLabeled = model.Transform(trainView);
                var (result, stage2Model) = stage2.Run(pseudoLabeled, DefaultColumnNames.PseudoLabel, $"generator-{key}", output);
                using (stage2Model)
                {
                    metrics["stage2"] = result;
                    stage2Table.AppendLine(Stage2Row($"{algorithm} pseudo-labels, {labelsPerClass}/class", result));
                    if (_args.Stage3)
                    {
                        // Stage 3, the paper's recipe: the same algorithm and budget as stage 1, from scratch, with the
                        // generated images added to the labeled set.
                        var stage3Options = Stage3Options(algorithm);
                        var clock3 = Stopwatch.StartNew();
                        using var stage3 = ml.Dpt().DptClassifierTrainer(stage3Options).Fit(stage2Model.Transform(pseudoLabeled));
                        double seconds3 = clock3.Elapsed.TotalSeconds;
                        double accuracy3 = Accuracy(ml, stage3.Transform(testView), DefaultColumnNames.PredictedLabel);
                        metrics["stage3"] = new JsonObject { ["accuracy"] = accuracy3, ["seconds"] = seconds3, ["steps"] = stage3Options.NumberOfSteps };
                        stage3.Save(Path.Combine(output, "stage3.dpt"));
                        rows.Add(($"DPT stage 3 ({algorithm})", accuracy3, double.NaN, stage3Options.NumberOfSteps, seconds3));
                        Console.WriteLine($"  DPT stage 3: test accuracy {accuracy3:P2} ({accuracy3 - accuracy:+0.00%;-0.00%} over stage 1), {seconds3:F1} s");
                    }
                }
            }
        }
        metrics["totalSeconds"] = started.Elapsed.TotalSeconds;
        File.WriteAllText(Path.Combine(output, "metrics.json"), metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return rows;
    }

    private DptClassifierTrainer.Options Stage3Options(SemiSupervisedAlgorithm algorithm)
    {
        var stage1 = Stage1Options(algorithm);
        return new DptClassifierTrainer.Options
        {
            Algorithm = algorithm, NumberOfSteps = stage1.NumberOfSteps, BatchSize = stage1.BatchSize, UnlabeledRatio = stage1.UnlabeledRatio,
            NetworkWidth = stage1.NetworkWidth, Device = stage1.Device, Seed = stage1.Seed, LogInterval = stage1.LogInterval,
            Progress = stage1.Progress, CancellationToken = stage1.CancellationToken,
            GeneratedImagesPerClass = _args.GeneratedPerClass, GeneratedImageWeight = _args.GeneratedWeight,
        };
    }

    private PseudoLabeler.Options Stage1Options(SemiSupervisedAlgorithm algorithm) => new()
    {
        Algorithm = algorithm,
        NumberOfSteps = _args.Steps ?? (Quick ? 1500 : 8000),
        BatchSize = Quick ? 32 : 64,
        UnlabeledRatio = Quick ? 3 : 7,
        NetworkWidth = Quick ? 16 : 32,
        Device = _args.Device,
        Seed = _args.Seed,
        LogInterval = 500,
        Progress = p => Console.WriteLine("    " + p),
        CancellationToken = _cancel,
    };

    /// <summary>
    /// Top-1 accuracy through ML.NET's evaluator, which takes the argmax of <c>Score</c>: the model's own prediction,
    /// even on rows whose known label the PseudoLabel column keeps.
    /// </summary>
    private static double Accuracy(MLContext ml, IDataView scored, string predictedLabelColumn = DefaultColumnNames.PseudoLabel) =>
        ml.MulticlassClassification.Evaluate(scored, labelColumnName: DefaultColumnNames.Label, scoreColumnName: DefaultColumnNames.Score,
            predictedLabelColumnName: predictedLabelColumn).MicroAccuracy;
}
