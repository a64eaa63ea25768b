using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Evaluation;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Evaluation;

public class QualityMeasureTests
{
    [Fact]
    public void FrechetDistanceMatchesTheClosedFormForGaussians()
    {
        // A ~ N(0, diag(1, 4)), B ~ N((1, 0), diag(4, 1)): FD = |Δμ|² + Σ(√a − √b)² = 1 + 1 + 1 = 3.
        var generator = new Generator(4, CPU);
        using var a = randn(new long[] { 200_000, 2 }, dtype: ScalarType.Float64, generator: generator) * tensor(new[] { 1.0, 2.0 });
        using var b = randn(new long[] { 200_000, 2 }, dtype: ScalarType.Float64, generator: generator) * tensor(new[] { 2.0, 1.0 }) + tensor(new[] { 1.0, 0.0 });

        Assert.Equal(3.0, FrechetDistance.Between(a, b), 1);
        Assert.Equal(FrechetDistance.Between(a, b), FrechetDistance.Between(b, a), 6);
        Assert.Equal(0.0, FrechetDistance.Between(a, a), 6);
    }

    [Fact]
    public void RealImagesAreCloserToRealImagesThanToNoiseInTheReferenceFeatureSpace()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.FashionMnistSubset;
        using var reference = TrainReference(ml, train);
        var fd = new FrechetDistance(reference.Classifier);

        var real = train.Select(Enumerable.Range(0, 1000).ToArray());
        var otherReal = test.Select(Enumerable.Range(0, 1000).ToArray());
        var random = new Random(1);
        var noise = Enumerable.Range(0, real.Pixels.Length).Select(_ => (float)random.NextDouble()).ToArray();

        double floor = fd.Compute(real.Pixels, 1000, otherReal.Pixels, 1000);
        double toNoise = fd.Compute(real.Pixels, 1000, noise, 1000);
        Assert.True(toNoise > 10 * floor, $"FD to noise {toNoise:F3} should dwarf FD between real sets {floor:F3}");
    }

    [Fact]
    public void ClassificationAccuracyScoreRewardsImagesThatCarryTheirClass()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.FashionMnistSubset;
        var asIfGenerated = train.Select(Enumerable.Range(0, 2000).ToArray());
        var shuffled = new ImageDataset(asIfGenerated.Pixels, asIfGenerated.Labels.OrderBy(_ => Guid.NewGuid()).ToArray(), asIfGenerated.Shape, asIfGenerated.ClassNames);
        PseudoLabeler.Options Options() => new() { NumberOfSteps = 200, BatchSize = 64, NetworkWidth = 8, Device = DptDevice.Cpu, Seed = 1 };

        double faithful = ClassificationAccuracyScore.Compute(ml, asIfGenerated, test, Options());
        double scrambled = ClassificationAccuracyScore.Compute(ml, shuffled, test, Options());

        Assert.True(faithful > 0.6, $"CAS of correctly labeled images: {faithful:P1}");
        Assert.True(scrambled < 0.3, $"CAS of images with random labels: {scrambled:P1}");
    }

    [Fact]
    public void ClassFaithfulnessIsTheReferenceAccuracyOnImagesOfKnownClass()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.FashionMnistSubset;
        using var reference = TrainReference(ml, train);
        var asIfGenerated = test.Select(Enumerable.Range(0, 1000).ToArray());
        // Every image labelled as the next class: the reference is right only where it confuses a class with its successor.
        var mislabeled = new ImageDataset(asIfGenerated.Pixels, asIfGenerated.Labels.Select(l => (l + 1) % 10).ToArray(), asIfGenerated.Shape, asIfGenerated.ClassNames);

        var faithful = ClassFaithfulness.Compute(reference.Classifier, asIfGenerated);
        var wrong = ClassFaithfulness.Compute(reference.Classifier, mislabeled);

        double accuracy = ml.MulticlassClassification.Evaluate(reference.Transform(asIfGenerated.ToDataView(ml)), "Label", "Score", "PseudoLabel").MicroAccuracy;
        Assert.Equal(accuracy, faithful.Overall, 12);
        Assert.True(faithful.Overall > 0.6, $"faithfulness of real images with their own labels: {faithful.Overall:P1}");
        Assert.True(wrong.Overall < 0.2, $"faithfulness of images labelled as another class: {wrong.Overall:P1}");
        var perClassCounts = Enumerable.Range(0, 10).Select(c => asIfGenerated.Labels.Count(l => l == c)).ToArray();
        Assert.Equal(faithful.Overall, faithful.PerClass.Zip(perClassCounts, (f, n) => f * n).Sum() / 1000, 12);
    }

    [Fact]
    public void ClassFaithfulnessNamesWhatItCannotMeasure()
    {
        var ml = new MLContext(seed: 1);
        var (train, _) = TestData.FashionMnistSubset;
        var options = new PseudoLabeler.Options { Algorithm = SemiSupervisedAlgorithm.SupervisedOnly, NumberOfSteps = 1, BatchSize = 8, NetworkWidth = 4, Device = DptDevice.Cpu, Seed = 1 };
        using var reference = ml.Dpt().PseudoLabeler(options).Fit(train.ToDataView(ml));
        var someClasses = train.Select(Enumerable.Range(0, train.Count).Where(i => train.Labels[i] != 3).Take(50).ToArray());
        var unlabeled = new ImageDataset(someClasses.Pixels, someClasses.Labels.Select((l, i) => i == 7 ? -1 : l).ToArray(), someClasses.Shape, someClasses.ClassNames);

        var missing = Assert.Throws<ArgumentException>(() => ClassFaithfulness.Compute(reference.Classifier, someClasses));
        Assert.Contains("Class 3 ('Dress') has no generated image", missing.Message);
        var noClass = Assert.Throws<ArgumentException>(() => ClassFaithfulness.Compute(reference.Classifier, unlabeled));
        Assert.Contains("needs the class it was generated for", noClass.Message);
    }

    /// <summary>A small fully supervised classifier of the subset, as the console's reference; it predicts labeled rows too.</summary>
    private static PseudoLabelerTransformer TrainReference(MLContext ml, ImageDataset train) =>
        ml.Dpt().PseudoLabeler(new PseudoLabeler.Options
        {
            Algorithm = SemiSupervisedAlgorithm.SupervisedOnly, NumberOfSteps = 150, BatchSize = 64, NetworkWidth = 8, Device = DptDevice.Cpu, Seed = 1,
            KeepKnownLabels = false,
        }).Fit(train.ToDataView(ml));
}
