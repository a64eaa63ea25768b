using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Data;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Console;

/// <summary>The main job (samples/Dpt.Console), started as a process as a user starts it.</summary>
public class MainJobTests
{
    private static readonly string Subset = Path.Combine(AppContext.BaseDirectory, FashionMnist.EmbeddedSubsetFolder);

    private static (int ExitCode, string Output, string Error) RunMainJob(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Dpt.Console.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("The main job did not finish in 5 minutes.");
        }
        return (process.ExitCode, output.Result, error.Result);
    }

    [Theory]
    [InlineData("--labels-per-class 0", "Option --labels-per-class needs whole numbers of at least 1; got '0'.")]
    [InlineData("--preset slow", "Option --preset must be one of quick, full; got 'slow'.")]
    [InlineData("--device tpu", "Option --device must be one of auto, cpu, cuda; got 'tpu'.")]
    [InlineData("--stages 4", "Option --stages must be 1, 2 or 3; got '4'.")]
    [InlineData("--seed", "Option --seed needs a value.")]
    [InlineData("--generated-weight -1", "Option --generated-weight needs a non-negative number; got '-1'.")]
    [InlineData("--pixel-weight nan", "Option --pixel-weight needs a non-negative number; got 'nan'.")]
    [InlineData("--gradient-weight -2", "Option --gradient-weight needs a non-negative number; got '-2'.")]
    [InlineData("--head-gradient-weight x", "Option --head-gradient-weight needs a non-negative number; got 'x'.")]
    [InlineData("--patch-weight -0.5", "Option --patch-weight needs a non-negative number; got '-0.5'.")]
    [InlineData("--head-l2 -1", "Option --head-l2 needs a non-negative number; got '-1'.")]
    [InlineData("--head-l2 0.1 --algorithm contrastive-propagation,contrastive-means", "Option --head-l2 regularises a frozen-feature head's logistic regression; --algorithm contrastive-means fits none.")]
    [InlineData("--head-l2 0.1", "Option --head-l2 regularises a frozen-feature head's logistic regression; --algorithm freematch fits none.")]
    [InlineData("--width 0", "Option --width needs a whole number of at least 1; got '0'.")]
    [InlineData("--feature-grid -1", "Option --feature-grid needs a whole number of at least 0; got '-1'.")]
    [InlineData("--algorithm mixmatch", "Option --algorithm takes fixmatch, freematch, contrastive-head, contrastive-means, contrastive-propagation, contrastive-freematch, propagation-freematch, propagation-freematch-propagation, resnet18-head; got 'mixmatch'.")]
    [InlineData("--sampler euler", "Option --sampler must be one of ddpm, ddim, dpmsolverplusplus; got 'euler'.")]
    [InlineData("--generated-confidence 0.5", "Option --generated-confidence is a threshold of stage 1's filter; add --filter-generated.")]
    [InlineData("--generated-confidence 2 --filter-generated", "Option --generated-confidence needs a probability in [0, 1]; got '2'.")]
    [InlineData("--generated-pass-rate 0.5", "Option --generated-pass-rate is a threshold of stage 1's filter; add --filter-generated.")]
    [InlineData("--generated-pass-rate 1.5 --filter-generated", "Option --generated-pass-rate needs a probability in [0, 1]; got '1.5'.")]
    [InlineData("--filter-with truelabels", "Option --filter-with picks the classifier of stage 3's filter; add --filter-generated.")]
    [InlineData("--filter-with pseudolabels --filter-generated --stages 2", "Option --filter-with picks stage 3's filter; --stages 2 stops before stage 3.")]
    [InlineData("--filter-with oracle --filter-generated", "Option --filter-with must be one of stage1, pseudolabels, truelabels; got 'oracle'.")]
    [InlineData("--guidance -0.5", "Option --guidance needs a non-negative number; got '-0.5'.")]
    [InlineData("--sampling-steps 0", "Option --sampling-steps needs a whole number of at least 1; got '0'.")]
    [InlineData("--temperature 0", "Option --temperature needs a positive number; got '0'.")]
    [InlineData("--min-crop 1.5", "Option --min-crop needs a fraction in (0, 1]; got '1.5'.")]
    [InlineData("--conditioned-fraction 0", "Option --conditioned-fraction needs a fraction in (0, 1]; got '0'.")]
    [InlineData("--fast", "Unknown option '--fast'; see --help.")]
    public void WrongOptionsEndWithOneLineAndExitCode1(string args, string message)
    {
        var (exitCode, _, error) = RunMainJob(args.Split(' '));
        Assert.Equal(1, exitCode);
        Assert.Equal("error: " + message, error.Trim());
    }

    [Fact]
    public void MissingOrMalformedDataFilesEndWithOneLineNamingTheFile()
    {
        using var folder = TestData.NewFolder();
        var (exitCode, _, error) = RunMainJob("--data", folder.Path);
        Assert.Equal(1, exitCode);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Contains("train-images-idx3-ubyte", error);

        foreach (var file in Directory.GetFiles(Subset, "*.gz")) File.Copy(file, folder.File(Path.GetFileName(file)));
        using (var truncated = new GZipStream(File.Create(folder.File("train-labels-idx1-ubyte.gz")), CompressionLevel.Fastest))
            truncated.Write(new byte[] { 0, 0, 8, 1, 0, 0, 0x17, 0x70, 1, 2, 3 });   // says 6,000 labels, holds 3
        (exitCode, _, error) = RunMainJob("--data", folder.Path);
        Assert.Equal(1, exitCode);
        Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("error: ", error);
        Assert.Contains("train-labels-idx1-ubyte.gz", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void ATinyRunWritesMetricsGridsAndModelsAndARerunResumesInsteadOfTraining()
    {
        using var output = TestData.NewFolder();
        string[] args = { "--data", Subset, "--labels-per-class", "1", "--train-images", "200", "--steps", "12", "--diffusion-steps", "8",
            "--evaluation-images", "20", "--sampler", "ddim", "--sampling-steps", "5", "--guidance", "2", "--conditioned-fraction", "0.5", "--filter-generated", "--generated-confidence", "0.05",
            "--generated-pass-rate", "0.2", "--device", "cpu", "--seed", "3", "--output", output.Path };
        var (exitCode, stdout, error) = RunMainJob(args);
        Assert.True(exitCode == 0, error);

        var metrics = JsonNode.Parse(File.ReadAllText(output.File("metrics.json")))!.AsObject();
        Assert.Equal(1, metrics["labelsPerClass"]!.GetValue<int>());
        Assert.Equal("quick", metrics["preset"]!.GetValue<string>());
        Assert.Equal("cpu", metrics["device"]!.GetValue<string>());
        Assert.Equal(3, metrics["seed"]!.GetValue<int>());
        Assert.Equal(Path.GetFullPath(Subset), metrics["dataset"]!.GetValue<string>());
        Assert.Equal("Ddim", metrics["stage2"]!["sampler"]!.GetValue<string>());
        Assert.Equal(2.0, Number(metrics, "stage2.guidanceScale"));
        Assert.Equal(5, metrics["stage2"]!["samplingSteps"]!.GetValue<int>());
        Assert.Equal(0.5, Number(metrics, "stage2.conditionedFraction"));
        foreach (var key in new[] { "supervisedOnly.accuracy", "stage1.accuracy", "stage1.pseudoLabelAccuracy", "stage3.accuracy", "stage2.cas", "stage2.faithful" })
            Assert.InRange(Number(metrics, key), 0, 1);
        Assert.Equal(10, metrics["stage2"]!["faithfulPerClass"]!.AsArray().Count);
        foreach (var stage in new[] { "supervisedOnly", "stage1", "stage3" })
            AssertConfusionMatchesAccuracy(metrics, stage);
        foreach (var key in new[] { "stage1.seconds", "stage2.fd", "stage2.fdFloor", "stage2.seconds", "stage3.seconds", "totalSeconds" })
            Assert.True(Number(metrics, key) >= 0, key);
        Assert.True(Number(metrics, "stage2.fd") > Number(metrics, "stage2.fdFloor"), "an 8-step generator is farther from the test images than the training images are");
        for (int c = 0; c < 10; c++) Assert.True(File.Exists(output.File($"samples-class-{c}.png")), $"samples-class-{c}.png");
        foreach (var model in new[] { "stage1-supervisedOnly.dpt", "stage1-freeMatch.dpt", "generator.dpt", "stage3.dpt", "results.md" })
            Assert.True(File.Exists(output.File(model)), model);
        Assert.Contains("PseudoLabeler step 12/12", stdout);
        Assert.DoesNotContain("[info]", stdout);   // the estimators' log only with --verbose
        Assert.Matches(@"freematch: test accuracy [0-9.]+ % \(per class( [0-9]+){10} %\)", stdout);
        // Stage 3's filter: how many generated images stage 1 let through, printed and recorded.
        var generated = metrics["stage3"]!["generatedImages"]!;
        int[] Counts(string key) => generated[key]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        var (made, kept, used) = (Counts("made"), Counts("kept"), Counts("used"));
        Assert.Equal(10, made.Length);
        Assert.True(made.Sum() > 0, "stage 2 made generated images");
        for (int c = 0; c < 10; c++) Assert.InRange(kept[c], used[c], made[c]);
        // A class of which the filter passes less than 20 % gives none.
        for (int c = 0; c < 10; c++) Assert.True(used[c] == 0 || kept[c] >= 0.2 * made[c], $"class {c}: {used[c]} used, {kept[c]} of {made[c]} kept");
        Assert.Contains($"generated images: {made.Sum()} made, {kept.Sum()} kept by stage 1's filter (per class {string.Join(" ", kept)}), {used.Sum()} used", stdout);
        Assert.Equal(0.05, Number(metrics, "stage3.minimumFilterProbability"));
        Assert.Equal(0.2, Number(metrics, "stage3.minimumClassPassRate"));
        // Stage 3 against stage 1 on the same test images: the paired counts give back both accuracies.
        double testImages = metrics["testImages"]!.GetValue<int>();
        double both = Number(metrics, "stage3.pairedWithStage1.bothRight"), onlyStage1 = Number(metrics, "stage3.pairedWithStage1.onlyStage1Right"),
            onlyStage3 = Number(metrics, "stage3.pairedWithStage1.onlyStage3Right");
        Assert.Equal(Number(metrics, "stage1.accuracy"), (both + onlyStage1) / testImages, 9);
        Assert.Equal(Number(metrics, "stage3.accuracy"), (both + onlyStage3) / testImages, 9);
        Assert.InRange(Number(metrics, "stage3.pairedWithStage1.pValue"), 0, 1);
        Assert.Contains("(z ", File.ReadAllText(output.File("results.md")));

        // The same command again finds every training run finished in DIR/checkpoints and reports the same numbers.
        (exitCode, stdout, error) = RunMainJob(args);
        Assert.True(exitCode == 0, error);
        Assert.DoesNotContain(" step ", stdout);
        var again = JsonNode.Parse(File.ReadAllText(output.File("metrics.json")))!.AsObject();
        foreach (var key in new[] { "supervisedOnly.accuracy", "stage1.accuracy", "stage2.fd", "stage2.cas", "stage3.accuracy" })
            Assert.Equal(Number(metrics, key), Number(again, key));

        // Stage 3's filter can be a classifier trained on stage 1's pseudo-labels instead: stages 1 and 2 come back
        // from their checkpoints unchanged, and the new filter's counts are printed and recorded under its name.
        (exitCode, stdout, error) = RunMainJob(args.Concat(new[] { "--filter-with", "pseudolabels" }).ToArray());
        Assert.True(exitCode == 0, error);
        Assert.Contains("pseudo-label classifier for the filter (every training image, stage 1's pseudo-labels)", stdout);
        var filtered = JsonNode.Parse(File.ReadAllText(output.File("metrics.json")))!.AsObject();
        foreach (var key in new[] { "stage1.accuracy", "stage2.fd" })
            Assert.Equal(Number(metrics, key), Number(filtered, key));
        Assert.Equal("PseudoLabels", filtered["stage3"]!["filterClassifier"]!.GetValue<string>());
        Assert.False(filtered["stage3"]!["filteredByStage1"]!.GetValue<bool>());
        var keptByPseudoLabels = filtered["stage3"]!["generatedImages"]!["kept"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        Assert.Contains($"{keptByPseudoLabels.Sum()} kept by the pseudo-label classifier's filter (per class {string.Join(" ", keptByPseudoLabels)})", stdout);
    }

    [Fact]
    public void PretrainingOptionsAndTheWidthAreRecordedInMetrics()
    {
        using var output = TestData.NewFolder();
        var (exitCode, stdout, error) = RunMainJob("--data", Subset, "--labels-per-class", "1", "--train-images", "100", "--stages", "1",
            "--algorithm", "contrastive-head", "--pretraining-steps", "2", "--temperature", "0.5", "--min-crop", "0.6", "--steps", "2",
            "--width", "4", "--device", "cpu", "--verbose", "--output", output.Path);
        Assert.True(exitCode == 0, error);
        // --verbose: the estimators' MLContext.Log lines, here the device and the pretraining.
        Assert.Contains("    [info] PseudoLabeler: ", stdout);
        var metrics = JsonNode.Parse(File.ReadAllText(output.File("metrics.json")))!.AsObject();
        Assert.Equal(2, Number(metrics, "contrastiveHead.pretraining.steps"));
        Assert.Equal(0.5, Number(metrics, "contrastiveHead.pretraining.temperature"));
        Assert.Equal(0.6, Number(metrics, "contrastiveHead.pretraining.minCropScale"));
        Assert.Equal(4, Number(metrics, "classifierWidth"));
        Assert.Null(metrics["supervisedOnly"]!["pretraining"]);
        Assert.InRange(Number(metrics, "contrastiveHead.accuracy"), 0, 1);
    }

    /// <summary>The stage's test confusion matrix is 10 x 10, counts every test image once, and its diagonal gives the stage's accuracy.</summary>
    private static void AssertConfusionMatchesAccuracy(JsonObject metrics, string stage)
    {
        var rows = metrics[stage]!["testConfusion"]!.AsArray().Select(row => row!.AsArray().Select(count => count!.GetValue<int>()).ToArray()).ToArray();
        Assert.Equal(10, rows.Length);
        Assert.All(rows, row => Assert.Equal(10, row.Length));
        int total = rows.Sum(row => row.Sum()), correct = Enumerable.Range(0, 10).Sum(c => rows[c][c]);
        Assert.Equal(Number(metrics, "testImages"), total);
        Assert.Equal(Number(metrics, $"{stage}.accuracy"), (double)correct / total, 6);
    }

    private static double Number(JsonObject metrics, string path)
    {
        JsonNode node = metrics;
        foreach (var part in path.Split('.')) node = node[part] ?? throw new KeyNotFoundException($"metrics.json has no '{path}'.");
        return node.GetValue<double>();
    }
}
