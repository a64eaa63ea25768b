using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Tests.Persistence;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Stages;

public class DptClassifierTrainerTests
{
    private static DptClassifierTrainer.Options TinyOptions() => new()
    {
        Algorithm = SemiSupervisedAlgorithm.FreeMatch, NumberOfSteps = 6, BatchSize = 8, UnlabeledRatio = 2, NetworkWidth = 4, LogInterval = 3, Device = DptDevice.Cpu,
    };

    private static (MLContext Ml, IDataView Train, IDataView Test, List<string> Log) SmallData()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(DptClassifierTrainer))) lock (log) log.Add(e.Message); };
        return (ml, FewLabelSplit.Apply(TestData.SmallTrain(6), 2, seed: 1).ToDataView(ml), TestData.SmallTrain(2).ToDataView(ml), log);
    }

    [Fact]
    public void TheThreeStagesChainAndTheFinalModelScoresLikeAnMLNetMulticlassTrainer()
    {
        var (ml, train, test, log) = SmallData();
        var options = TinyOptions();
        options.GeneratedImagesPerClass = 2;
        var chain = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions())
            .Append(ml.Dpt().ConditionalDiffusionAugmenter(ConditionalDiffusionAugmenterTests.TinyOptions()))
            .Append(ml.Dpt().DptClassifierTrainer(options));
        var model = chain.Fit(train);

        // The generated images reached stage 3's labeled set: 2 per class of the 3 made, and the model says so.
        Assert.Contains(log, m => m.Contains("(20 labeled, plus 20 generated)"));
        var counts = model.LastTransformer.GeneratedImages!;
        Assert.Equal(Enumerable.Repeat(3, 10), counts.Received);
        Assert.Equal(counts.Received, counts.Kept);   // no filter
        Assert.Equal(Enumerable.Repeat(2, 10), counts.Used);
        Assert.Equal((30, 30, 20), (counts.TotalReceived, counts.TotalKept, counts.TotalUsed));

        var scored = model.Transform(test);
        Assert.Equal(20, scored.GetColumn<uint>("PredictedLabel").Count());
        var metrics = ml.MulticlassClassification.Evaluate(scored);   // default columns: Label, Score, PredictedLabel
        Assert.InRange(metrics.MicroAccuracy, 0, 1);
        var names = ml.Transforms.Conversion.MapKeyToValue("PredictedName", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<string>("PredictedName").ToArray();
        Assert.All(names, n => Assert.Contains(n, FashionMnist.ClassNames));

        var engine = ml.Model.CreatePredictionEngine<PseudoLabelerTests.ImageInput, FinalOutput>(model);
        var prediction = engine.Predict(new PseudoLabelerTests.ImageInput { Image = test.GetColumn<float[]>("Image").First() });
        Assert.Equal(10, prediction.Score.Length);
        Assert.Equal(scored.GetColumn<uint>("PredictedLabel").First(), prediction.PredictedLabel);

        // Stage 3 again on the chain's stage-2 output, vetting the generated images with stage 1's classifier, which
        // the chain passes along: the log names how many of the 30 were kept.
        IDataView withGenerated = train;
        foreach (var transformer in model.Take(2)) withGenerated = transformer.Transform(withGenerated);
        var filtered = TinyOptions();
        filtered.FilterWithPseudoLabeler = true;
        using (var vetted = ml.Dpt().DptClassifierTrainer(filtered).Fit(withGenerated))
        {
            var vettedCounts = vetted.GeneratedImages!;
            Assert.Contains(log, m => m.Contains($"GeneratedImageFilter keeps {vettedCounts.TotalKept} of 30 generated images (per class: {string.Join(", ", vettedCounts.Kept)})"));
            Assert.Equal(vettedCounts.Kept, vettedCounts.Used);   // no per-class share: all it keeps
            Assert.All(vettedCounts.Kept.Zip(vettedCounts.Received), pair => Assert.InRange(pair.First, 0, pair.Second));
        }

        // A threshold no tiny classifier reaches keeps none: stage 3 says so and trains on the real rows alone.
        filtered.GeneratedImageMinimumConfidence = 1;
        using (var none = ml.Dpt().DptClassifierTrainer(filtered).Fit(withGenerated))
            Assert.Equal((30, 0, 0), (none.GeneratedImages!.TotalReceived, none.GeneratedImages.TotalKept, none.GeneratedImages.TotalUsed));
        Assert.Contains(log, m => m.Contains("GeneratedImageFilter keeps 0 of 30 generated images at probability 1 or more"));
        Assert.Contains(log, m => m.Contains("no generated image is left to use"));
        Assert.Contains("(20 labeled)", log.Last(m => m.Contains(" labeled")));
        filtered.GeneratedImageMinimumConfidence = 0;

        // Without the chain there is no stage-1 classifier to ask: a clear error.
        var error = Assert.Throws<InvalidOperationException>(() => ml.Dpt().DptClassifierTrainer(filtered).Fit(
            model.Skip(1).First().Transform(train)));
        Assert.Contains("FilterWithPseudoLabeler needs the input", error.Message);
    }

    [Fact]
    public void TheGeneratedImageFilterKeepsExactlyTheImagesItAssignsToTheirOwnClassMostProbableFirst()
    {
        var (ml, train, _, log) = SmallData();
        using var stage1 = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions()).Fit(train);
        // Stand-ins for generated images: real ones, "generated for" the class stage 1 predicts on even rows and for
        // another class on odd rows.
        var images = TestData.SmallTrain(2);
        var probabilities = stage1.Classifier.PredictProbabilities(images.Pixels, images.Count);
        var predicted = Enumerable.Range(0, images.Count).Select(i => Enumerable.Range(0, 10).MaxBy(c => probabilities[i * 10 + c])).ToArray();
        var generated = new ImageDataset(images.Pixels, predicted.Select((p, i) => i % 2 == 0 ? p : (p + 1) % 10).ToArray(), images.Shape, images.ClassNames);
        float Confidence(int i) => probabilities[i * 10 + predicted[i]];
        var agreed = Enumerable.Range(0, images.Count).Where(i => i % 2 == 0).ToArray();
        // Expected order: by class, then the filter's probability for that class, highest first.
        var expected = agreed.OrderBy(i => predicted[i]).ThenByDescending(Confidence).ToArray();

        using var channel = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register(nameof(DptClassifierTrainer)).Start("test");
        var kept = DptClassifierTrainer.KeepAgreed(generated, stage1.Classifier, 0, channel);
        Assert.Equal(expected.Select(i => predicted[i]), kept.Labels);
        Assert.Equal(images.Select(expected).Pixels, kept.Pixels);
        Assert.Contains(log, m => m.Contains($"GeneratedImageFilter keeps {images.Count / 2} of {images.Count} generated images ("));

        // With a threshold at the median probability of the agreed images, exactly those at or above it stay.
        double threshold = agreed.Select(Confidence).Order().ElementAt(agreed.Length / 2);
        var sure = expected.Where(i => Confidence(i) >= threshold).ToArray();
        Assert.InRange(sure.Length, 1, agreed.Length - 1);
        kept = DptClassifierTrainer.KeepAgreed(generated, stage1.Classifier, threshold, channel);
        Assert.Equal(images.Select(sure).Pixels, kept.Pixels);
        Assert.Contains(log, m => m.Contains($"GeneratedImageFilter keeps {sure.Length} of {images.Count} generated images at probability {threshold} or more"));
    }

    [Fact]
    public void AClassOfWhichTheFilterPassesLessThanThePassRateGivesNoImages()
    {
        var (ml, _, _, log) = SmallData();
        using var channel = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register(nameof(DptClassifierTrainer)).Start("test");
        var kept = TestData.SmallTrain(2);   // two images of each class passed the filter
        var keptPerClass = GeneratedImageCounts.PerClass(kept);
        // Of class 0, 2 of 10 passed (0.2); of class 1, 2 of 4 (0.5, exactly the rate: kept); of the others, 2 of 2.
        var received = keptPerClass.Select((k, c) => c switch { 0 => 10, 1 => 4, _ => k }).ToArray();

        var used = DptClassifierTrainer.DropRejectedClasses(kept, received, 0.5, channel);

        var expected = Enumerable.Range(0, kept.Count).Where(i => kept.Labels[i] != 0).ToArray();
        Assert.Equal(kept.Select(expected).Labels, used.Labels);
        Assert.Equal(kept.Select(expected).Pixels, used.Pixels);
        Assert.Contains(log, m => m.Contains($"below the pass rate 0.5, the generated images of {kept.ClassNames[0]} (2 of 10 passed the filter) are not used."));
        Assert.Same(kept, DptClassifierTrainer.DropRejectedClasses(kept, received, 0, channel));   // rate 0: every class
    }

    [Theory]
    [InlineData(0.5, false, "GeneratedImageMinimumConfidence", "0 when there is no filter")]
    [InlineData(1.5, true, "GeneratedImageMinimumConfidence", "a probability in [0, 1]")]
    [InlineData(-0.1, true, "GeneratedImageMinimumConfidence", "a probability in [0, 1]")]
    [InlineData(0.5, false, "GeneratedClassMinimumPassRate", "0 when there is no filter")]
    [InlineData(1.5, true, "GeneratedClassMinimumPassRate", "a share in [0, 1]")]
    [InlineData(double.NaN, true, "GeneratedClassMinimumPassRate", "a share in [0, 1]")]
    public void FilterThresholdsNeedAFilterAndAShare(double threshold, bool filter, string option, string expected)
    {
        var options = TinyOptions();
        typeof(DptClassifierTrainer.Options).GetProperty(option)!.SetValue(options, threshold);
        options.FilterWithPseudoLabeler = filter;
        var error = Assert.ThrowsAny<ArgumentException>(() => new MLContext(seed: 1).Dpt().DptClassifierTrainer(options));
        Assert.Contains(option, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void SaveAndLoadRoundTripExactly()
    {
        var (ml, train, test, _) = SmallData();
        using var model = ml.Dpt().DptClassifierTrainer(TinyOptions()).Fit(train);
        using var folder = TestData.NewFolder();
        model.Save(folder.File("stage3.dpt"));
        using var loaded = ml.Dpt().LoadDptClassifier(folder.File("stage3.dpt"), DptDevice.Cpu);
        Assert.Equal(model.Transform(test).GetColumn<float[]>("Score"), loaded.Transform(test).GetColumn<float[]>("Score"));
        Assert.Null(loaded.GeneratedImages);   // trained on real rows only
        Assert.Throws<InvalidDataException>(() => PseudoLabelerTransformer.Load(folder.File("stage3.dpt"), DptDevice.Cpu));   // another kind of file
    }

    [Fact]
    public void TheGeneratedImageCountsAreSavedWithTheModel()
    {
        var (ml, train, _, _) = SmallData();
        var withGenerated = new SyntheticImagesDataView(train, TestData.SmallTrain(1));   // one real image per class stands in for generated ones
        using var model = ml.Dpt().DptClassifierTrainer(TinyOptions()).Fit(withGenerated);
        using var folder = TestData.NewFolder();
        var path = folder.File("stage3.dpt");
        model.Save(path);
        using (var loaded = DptClassifierTransformer.Load(path, DptDevice.Cpu))
        {
            Assert.Equal(Enumerable.Repeat(1, 10), loaded.GeneratedImages!.Received);
            Assert.Equal(model.GeneratedImages!.Kept, loaded.GeneratedImages.Kept);
            Assert.Equal(model.GeneratedImages.Used, loaded.GeneratedImages.Used);
        }

        // A count list that does not read back whole is a damaged file, named, not counts silently lost.
        var damaged = folder.File("damaged.dpt");
        ModelFileTests.EditManifest(damaged, path, manifest => manifest["generatedImages"]!["used"] = new System.Text.Json.Nodes.JsonArray(1, -2));
        var error = Assert.Throws<InvalidDataException>(() => DptClassifierTransformer.Load(damaged, DptDevice.Cpu));
        Assert.Contains("damaged.dpt", error.Message);
        Assert.Contains("'generatedImages' is not three lists of counts", error.Message);
    }

    [Fact]
    public void WithoutGeneratedImagesItWarnsAndTrainsOnTheRealRows()
    {
        var (ml, train, _, log) = SmallData();
        using var _ = ml.Dpt().DptClassifierTrainer(TinyOptions()).Fit(train);
        Assert.Contains(log, m => m.Contains("carries no generated images"));
    }

    [Fact]
    public void FineTuningNeedsAClassifierOfTheSameArchitecture()
    {
        var (ml, train, _, _) = SmallData();
        using var stage1 = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions()).Fit(train);
        var options = TinyOptions();
        options.StartFrom = stage1.Classifier;
        using var fineTuned = ml.Dpt().DptClassifierTrainer(options).Fit(train);   // same width 4: fine
        options.NetworkWidth = 8;
        var error = Assert.Throws<ArgumentException>(() => ml.Dpt().DptClassifierTrainer(options).Fit(train));
        Assert.Contains("The classifier to start from", error.Message);

        var bad = TinyOptions();
        bad.GeneratedImageWeight = -1;
        Assert.StartsWith("Option GeneratedImageWeight is -1", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().DptClassifierTrainer(bad)).Message);
    }

    [Fact]
    public void TheOneCallPipelineEqualsTheHandWrittenChain()
    {
        float[][] Scores(bool oneCall)
        {
            var (ml, train, test, _) = SmallData();
            var stage1 = PseudoLabelerTests.TinyOptions();
            var stage2 = ConditionalDiffusionAugmenterTests.TinyOptions();
            var stage3 = TinyOptions();
            var chain = oneCall
                ? ml.Dpt().DualPseudoTraining(new DualPseudoTrainingOptions { Stage1 = stage1, Stage2 = stage2, Stage3 = stage3 })
                : ml.Dpt().PseudoLabeler(stage1).Append(ml.Dpt().ConditionalDiffusionAugmenter(stage2)).Append(ml.Dpt().DptClassifierTrainer(stage3));
            var model = chain.Fit(train);
            Assert.Equal(10, model.Generator().ClassNames.Count);
            Assert.Same(model.LastTransformer, model.FinalClassifier());
            Assert.Equal(4, model.PseudoLabeler().Classifier.Spec.Width);
            return model.Transform(test).GetColumn<float[]>("Score").ToArray();
        }
        Assert.Equal(Scores(oneCall: true), Scores(oneCall: false));
    }

    [Fact]
    public void TheOneCallPipelineChecksThatStage2ReadsStage1sPseudoLabels()
    {
        var options = new DualPseudoTrainingOptions();
        options.Stage2.LabelColumnName = "Label";
        var error = Assert.Throws<ArgumentException>(() => new MLContext().Dpt().DualPseudoTraining(options));
        Assert.Contains("Stage2.LabelColumnName is 'Label'", error.Message);
    }

    private sealed class FinalOutput
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public uint PredictedLabel { get; set; }
    }
}
