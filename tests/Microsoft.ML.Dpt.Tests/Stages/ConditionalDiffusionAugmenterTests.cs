using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Stages.Scoring;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Stages;

public class ConditionalDiffusionAugmenterTests
{
    internal static ConditionalDiffusionAugmenter.Options TinyOptions(string labelColumn = "PseudoLabel") => new()
    {
        LabelColumnName = labelColumn, Size = DenoiserSize.Tiny, NumberOfSteps = 4, BatchSize = 8, ImagesPerClass = 3,
        SamplingSteps = 3, LogInterval = 2, Device = DptDevice.Cpu,
    };

    private static (MLContext Ml, IDataView Train, IDataView Test) SmallData()
    {
        var ml = new MLContext(seed: 1);
        return (ml, FewLabelSplit.Apply(TestData.SmallTrain(6), 2, seed: 1).ToDataView(ml), TestData.SmallTrain(2).ToDataView(ml));
    }

    [Fact]
    public void InAChainGeneratedImagesReachTheNextFitWhileScoringSeesOnlyTheRealRows()
    {
        var (ml, train, test) = SmallData();
        var chain = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions())
            .Append(ml.Dpt().ConditionalDiffusionAugmenter(TinyOptions()));
        var model = chain.Fit(train);
        var stage2 = model.LastTransformer;

        // 1. What the chain hands to the next Fit carries the generated images, each with its class.
        var passedOn = model.Transform(train);
        var synthetic = Assert.IsAssignableFrom<ISyntheticImageSource>(passedOn).SyntheticImages;
        Assert.Equal(30, synthetic.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(3, synthetic.Labels.Count(l => l == c)));
        Assert.All(synthetic.Pixels, v => Assert.InRange(v, 0f, 1f));
        Assert.Same(stage2.SyntheticImages, synthetic);

        // 2. Scoring a test set returns exactly its rows.
        var scored = model.Transform(test);
        Assert.Equal(20, scored.GetColumn<uint>("PseudoLabel").Count());
        Assert.Equal(test.GetColumn<float[]>("Image").Select(i => i.Sum()), scored.GetColumn<float[]>("Image").Select(i => i.Sum()));
        Assert.Equal(stage2.GetOutputSchema(model.First().GetOutputSchema(test.Schema)).Select(c => c.Name),
            model.First().GetOutputSchema(test.Schema).Select(c => c.Name));

        // 3. PredictionEngine works on the fitted chain.
        var engine = ml.Model.CreatePredictionEngine<PseudoLabelerTests.ImageInput, PseudoLabelerTests.PseudoLabelOutput>(model);
        var prediction = engine.Predict(new PseudoLabelerTests.ImageInput { Image = test.GetColumn<float[]>("Image").First() });
        Assert.Equal(10, prediction.Score.Length);
    }

    [Fact]
    public void TheGeneratorIsSavedOnItsOwnAndReproducesItsSamples()
    {
        var (ml, train, _) = SmallData();
        var labeled = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions()).Fit(train).Transform(train);
        using var stage2 = ml.Dpt().ConditionalDiffusionAugmenter(TinyOptions()).Fit(labeled);
        using var folder = TestData.NewFolder();
        var path = folder.File("generator.dpt");
        stage2.Generator.Save(path);
        using var loaded = ml.Dpt().LoadGenerator(path, DptDevice.Cpu);

        foreach (var sampler in new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmSolverPlusPlus })
        {
            var before = stage2.Generator.Generate(4, 5, seed: 12, sampler: sampler);
            Assert.Equal(before, loaded.Generate(4, 5, seed: 12, sampler: sampler));
            Assert.NotEqual(before, loaded.Generate(4, 5, seed: 13, sampler: sampler));
        }
        Assert.Equal(stage2.Generator.Spec, loaded.Spec);
    }

    [Fact]
    public void WritesOnePngGridPerClass()
    {
        var (ml, train, _) = SmallData();
        using var stage2 = ml.Dpt().ConditionalDiffusionAugmenter(TinyOptions("Label")).Fit(train);
        using var folder = TestData.NewFolder();
        var paths = stage2.Generator.SaveGrids(folder.Path, perClass: 4, seed: 1, columns: 2);
        Assert.Equal(10, paths.Count);
        using var grid = SixLabors.ImageSharp.Image.Load(paths[3]);
        Assert.Equal(2 * 29 + 1, grid.Width);
        Assert.Equal(2 * 29 + 1, grid.Height);

        var files = stage2.Generator.ExportImages(Path.Combine(folder.Path, "single"), classIndex: 7, count: 3, seed: 2);
        Assert.Equal(3, files.Count);
        using var one = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.L8>(files[1]);
        Assert.Equal((28, 28), (one.Width, one.Height));
        // The file holds the generated pixels (to 8 bits).
        var expected = stage2.Generator.Generate(7, 3, seed: 2).AsSpan(784, 784).ToArray();
        Assert.Equal((byte)Math.Round(expected[300] * 255), one[300 % 28, 300 / 28].PackedValue);
    }

    [Fact]
    public void ErrorsNameTheColumnTheClassOrTheOption()
    {
        var (ml, train, _) = SmallData();
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().ConditionalDiffusionAugmenter(TinyOptions()).Fit(train));
        Assert.Contains("Label column 'PseudoLabel' was not found", missing.Message);

        var data = TestData.SmallTrain(3);
        var noCoat = new ImageDataset(data.Pixels, data.Labels.Select(l => l == 4 ? -1 : l).ToArray(), data.Shape, data.ClassNames).ToDataView(ml);
        var empty = Assert.Throws<InvalidOperationException>(() => ml.Dpt().ConditionalDiffusionAugmenter(TinyOptions("Label")).Fit(noCoat));
        Assert.Contains("no row of class 'Coat'", empty.Message);

        var options = TinyOptions();
        options.ConditionDropout = 1.5;
        var option = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().ConditionalDiffusionAugmenter(options));
        Assert.StartsWith("Option ConditionDropout is 1.5; expected a probability in [0, 1].", option.Message);
    }

    [Fact]
    public void KeepMostConfidentLeavesEachClassItsSurestRows()
    {
        int[] labels = { 0, 0, 0, 0, 1, 1, -1 };
        float[] confidence = { 0.9f, 0.1f, 0.5f, 0.5f, 0.2f, 0.8f, 0.99f };
        // Class 0 keeps ceil(0.5 * 4) = 2 rows: 0.9 and the earlier of the two 0.5s; class 1 keeps 1 of 2; -1 stays.
        Assert.Equal(new[] { 0, -1, 0, -1, -1, 1, -1 }, ConfidentLabels.KeepMostConfident(labels, confidence, 0.5));
        Assert.Equal(new[] { 0, -1, -1, -1, -1, 1, -1 }, ConfidentLabels.KeepMostConfident(labels, confidence, 0.1));
        Assert.Equal(labels, ConfidentLabels.KeepMostConfident(labels, confidence, 1.0));
    }

    [Fact]
    public void ConditionedFractionTrainsAsIfTheLessConfidentRowsHadNoLabel()
    {
        var (ml, train, _) = SmallData();
        var labeled = ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions()).Fit(train).Transform(train);
        var pseudoLabels = labeled.GetColumn<uint>("PseudoLabel").Select(k => (int)k - 1).ToArray();
        var confidence = labeled.GetColumn<float>("PseudoLabelConfidence").ToArray();
        var options = TinyOptions();
        options.Seed = 5;
        options.ConditionedFraction = 0.3;
        using var confident = ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(labeled);

        // The same training on a data set whose less confident rows carry no label at all gives the same model.
        var data = TestData.SmallTrain(6);
        var masked = ConfidentLabels.KeepMostConfident(pseudoLabels, confidence, 0.3);
        Assert.InRange(masked.Count(l => l >= 0), 10, pseudoLabels.Length / 2);   // at least one row per class, about 30 % in all
        var byHand = TinyOptions("Label");
        byHand.Seed = 5;
        using var reference = ml.Dpt().ConditionalDiffusionAugmenter(byHand).Fit(new ImageDataset(data.Pixels, masked, data.Shape, data.ClassNames).ToDataView(ml));
        Assert.Equal(reference.Generator.Generate(2, 4, seed: 7), confident.Generator.Generate(2, 4, seed: 7));

        options.ConditionedFraction = 1;
        using var everyRow = ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(labeled);
        Assert.NotEqual(everyRow.Generator.Generate(2, 4, seed: 7), confident.Generator.Generate(2, 4, seed: 7));
    }

    [Fact]
    public void ConditionedFractionNeedsASingleConfidenceColumn()
    {
        var (ml, train, _) = SmallData();
        var options = TinyOptions("Label");
        options.ConditionedFraction = 0.5;
        var estimator = ml.Dpt().ConditionalDiffusionAugmenter(options);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(train));
        Assert.Contains("Confidence column 'PseudoLabelConfidence' was not found", missing.Message);
        var schema = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(SchemaShapeColumns.FromSchema(train.Schema)));
        Assert.Contains("Confidence column 'PseudoLabelConfidence' was not found", schema.Message);

        options.ConfidenceColumnName = "Label";
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(train));
        Assert.Contains("Confidence column 'Label' has type", wrongType.Message);
        Assert.Contains("expected a scalar Single", wrongType.Message);

        options.ConditionedFraction = 0;
        var option = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().ConditionalDiffusionAugmenter(options));
        Assert.StartsWith("Option ConditionedFraction is 0; expected a fraction in (0, 1].", option.Message);
    }

    [Fact]
    public void CancellationStopsDiffusionTraining()
    {
        var (ml, train, _) = SmallData();
        using var cancel = new CancellationTokenSource();
        var options = TinyOptions("Label");
        options.NumberOfSteps = 10_000;
        options.LogInterval = 1;
        options.CancellationToken = cancel.Token;
        options.Progress = p => { if (p.Step == 2) cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(train));
    }
}
