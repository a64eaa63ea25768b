using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class LabelPropagationTests
{
    /// <summary>
    /// Points on the unit circle in arcs, one class per arc, with gaps between arcs far wider than the spacing of
    /// points within one; each class is labeled at one end of its arc only. Returns the features and true classes.
    /// </summary>
    private static (float[] Features, int[] Classes) Arcs(int classes, int perClass, double gap)
    {
        double arc = 2 * Math.PI / classes - gap;
        var features = new List<float>();
        var truth = new List<int>();
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
            {
                double angle = c * 2 * Math.PI / classes + arc * i / (perClass - 1);
                features.AddRange(new[] { (float)Math.Cos(angle), (float)Math.Sin(angle) });
                truth.Add(c);
            }
        return (features.ToArray(), truth.ToArray());
    }

    [Fact]
    public void LabelsTravelAlongEachArcWhereTheNearestLabeledPointIsWrong()
    {
        const int Classes = 2, PerClass = 100;
        var (features, truth) = Arcs(Classes, PerClass, gap: 0.3);
        var seeds = Enumerable.Repeat(-1, truth.Length).ToArray();
        seeds[0] = 0;               // angle 0, the start of class 0's arc
        seeds[PerClass] = 1;        // angle π, the start of class 1's arc
        using var x = tensor(features, new long[] { truth.Length, 2 });

        var (labels, certainty) = LabelPropagation.Propagate(x, seeds, Enumerable.Repeat(1f, truth.Length).ToArray(), Classes, neighbors: 5, CancellationToken.None);

        Assert.Equal(truth, labels);
        Assert.All(certainty, c => Assert.InRange(c, 0.99f, 1f));   // the arcs are separate graph components
        // The baseline the graph beats: the more similar labeled point (cosine x for the seed at angle 0, −x for the
        // one at π) gets the far half of each arc wrong.
        int nearestSeedRight = Enumerable.Range(0, truth.Length).Count(i => (features[2 * i] >= 0 ? 0 : 1) == truth[i]);
        Assert.True(nearestSeedRight < 0.6 * truth.Length, $"{nearestSeedRight} of {truth.Length}");
    }

    [Fact]
    public void BalancingMovesTheBoundaryBetweenOffCentreLabelsToWhereEachClassGetsItsShare()
    {
        // One unbroken arc, its first half class 0 and its second half class 1, labeled at its start and well past
        // its middle: left alone, the boundary falls midway between the two labels and class 1 takes 70 of the
        // 100 points; with equal shares it moves to the middle of the arc.
        const int Points = 100;
        var features = new float[2 * Points];
        for (int i = 0; i < Points; i++)
            (features[2 * i], features[2 * i + 1]) = ((float)Math.Cos(2.0 * i / Points), (float)Math.Sin(2.0 * i / Points));
        var truth = Enumerable.Range(0, Points).Select(i => i < Points / 2 ? 0 : 1).ToArray();
        var seeds = Enumerable.Repeat(-1, Points).ToArray();
        seeds[0] = 0;
        seeds[60] = 1;
        var weights = Enumerable.Repeat(1f, Points).ToArray();
        using var x = tensor(features, new long[] { Points, 2 });

        var (alone, _) = LabelPropagation.Propagate(x, seeds, weights, 2, neighbors: 4, CancellationToken.None);
        var (balanced, certainty) = LabelPropagation.Propagate(x, seeds, weights, 2, neighbors: 4, CancellationToken.None, classShares: new[] { 0.5f, 0.5f });

        int Right(int[] labels) => Enumerable.Range(0, Points).Count(i => labels[i] == truth[i]);
        Assert.InRange(Right(alone), 0, 85);
        Assert.InRange(Right(balanced), 95, Points);
        Assert.Equal(0, balanced[0]);
        Assert.Equal(1, balanced[Points - 1]);
        Assert.All(certainty, c => Assert.InRange(c, 0f, 1f));
        Assert.Throws<ArgumentException>(() => LabelPropagation.Propagate(x, seeds, weights, 2, 4, CancellationToken.None, classShares: new[] { 0.5f, 0.6f }));
    }

    [Fact]
    public void BalancingGivesEachClassItsMassAndKeepsTheRowsInTheirOrder()
    {
        // Eight rows lean to class 0 and two to class 1; the shares ask for half each.
        var leaning = new[] { 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f, 0.3f, 0.2f };
        using var probabilities = stack(leaning.Select(p => tensor(new[] { p, 1 - p })).ToArray());
        using var balanced = LabelPropagation.Balance(probabilities, tensor(new[] { 5f, 5f }));

        var mass = balanced.sum(0, keepdim: false).data<float>().ToArray();
        Assert.InRange(mass[0], 4.9f, 5.1f);
        Assert.InRange(mass[1], 4.9f, 5.1f);
        var toClass0 = balanced[.., 0].data<float>().ToArray();
        for (int i = 1; i < leaning.Length; i++) Assert.True(toClass0[i] < toClass0[i - 1], $"row {i} overtook row {i - 1}");
        Assert.True(toClass0[0] > 0.5f && toClass0[^1] < 0.5f);
        Assert.All(balanced.sum(1, keepdim: false).data<float>().ToArray(), total => Assert.InRange(total, 0.999f, 1.001f));
    }

    /// <summary>
    /// Two classes that differ only along the first of <paramref name="length"/> dimensions (class means ±0.5, spread
    /// 0.1), with unit-variance noise shared by both classes in every other dimension, so that the noise dominates
    /// each row's nearest neighbours. Returns the features and true classes.
    /// </summary>
    private static (float[] Features, int[] Classes) FaintSignalInLoudNoise(int perClass, int length, int seed)
    {
        var random = new Random(seed);
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var features = new float[2 * perClass * length];
        var truth = new int[2 * perClass];
        for (int i = 0; i < truth.Length; i++)
        {
            truth[i] = i / perClass;
            features[i * length] = (float)((truth[i] == 0 ? -0.5 : 0.5) + 0.1 * Gaussian());
            for (int j = 1; j < length; j++) features[i * length + j] = (float)Gaussian();
        }
        return (features, truth);
    }

    [Fact]
    public void ASecondPassOverClassWhitenedFeaturesFindsTheFaintDirectionThatSeparatesTheClasses()
    {
        const int PerClass = 300, Length = 5;
        var (features, truth) = FaintSignalInLoudNoise(PerClass, Length, seed: 1);
        var seeds = Enumerable.Repeat(-1, truth.Length).ToArray();
        for (int i = 0; i < 5; i++) (seeds[i], seeds[PerClass + i]) = (0, 1);
        var weights = Enumerable.Repeat(1f, truth.Length).ToArray();
        using var raw = tensor(features, new long[] { truth.Length, Length });
        using var x = nn.functional.normalize(raw, dim: 1);
        var shares = new[] { 0.5f, 0.5f };

        var (once, _) = LabelPropagation.Propagate(x, seeds, weights, 2, neighbors: 10, CancellationToken.None, shares);
        var (twice, certainty) = LabelPropagation.Propagate(x, seeds, weights, 2, neighbors: 10, CancellationToken.None, shares, learnMetric: true);

        int Right(int[] labels) => Enumerable.Range(0, truth.Length).Count(i => labels[i] == truth[i]);
        // Measured: 437 and 598 of 600 (data seeds 2 and 3: 456 / 597, 410 / 594).
        Assert.InRange(Right(once), 0, (int)(0.85 * truth.Length));
        Assert.InRange(Right(twice), (int)(0.95 * truth.Length), truth.Length);
        Assert.All(certainty, c => Assert.InRange(c, 0f, 1f));
    }

    [Fact]
    public void WhiteningByTheClassesGivesUnitNormRowsAndCountsOnlyReachedRows()
    {
        var (features, truth) = FaintSignalInLoudNoise(50, 4, seed: 2);
        using var x = tensor(features, new long[] { truth.Length, 4 });
        using var probabilities = nn.functional.one_hot(tensor(truth.Select(c => (long)c).ToArray()), 2).to(ScalarType.Float32);
        using var whitened = LabelPropagation.WhitenedByClasses(x, probabilities);
        Assert.Equal(new long[] { truth.Length, 4 }, whitened.shape);
        Assert.All(whitened.norm(1).data<float>().ToArray(), n => Assert.InRange(n, 0.999f, 1.001f));

        // A row that no label reached (all-zero probabilities) changes nothing in the metric, however far out it is.
        using var outlier = cat(new[] { x, full(1, 4, 100f) });
        using var unreached = cat(new[] { probabilities, zeros(1, 2) });
        using var withOutlier = LabelPropagation.WhitenedByClasses(outlier, unreached);
        using var cosines = withOutlier.narrow(0, 0, truth.Length).matmul(withOutlier.narrow(0, 0, truth.Length).t());
        using var expected = whitened.matmul(whitened.t());
        Assert.True(cosines.allclose(expected, rtol: 0, atol: 0.05), "the unreached row moved the other rows' similarities");
    }

    [Fact]
    public void ARowThatNoLabelReachesHasNoCertaintyAndGeneratedSeedsCountByTheirWeight()
    {
        const int PerClass = 50;
        var (features, truth) = Arcs(3, PerClass, gap: 0.5);
        var seeds = Enumerable.Repeat(-1, truth.Length).ToArray();
        var weights = Enumerable.Repeat(1f, truth.Length).ToArray();
        seeds[0] = 0;
        seeds[PerClass] = 1;
        weights[PerClass] = 0.25f;   // a generated image's weight: its class still spreads along its own arc
        using var x = tensor(features, new long[] { truth.Length, 2 });

        var (labels, certainty) = LabelPropagation.Propagate(x, seeds, weights, 3, neighbors: 4, CancellationToken.None);

        for (int i = 0; i < 2 * PerClass; i++)
        {
            Assert.Equal(truth[i], labels[i]);
            Assert.True(certainty[i] > 0.99f, $"row {i}: certainty {certainty[i]}");
        }
        Assert.All(certainty.Skip(2 * PerClass), c => Assert.Equal(0f, c));   // the third arc has no label
    }

    [Fact]
    public void BadArgumentsAreClearErrorsAndCancellationStopsIt()
    {
        using var x = tensor(new float[] { 1, 0, 0, 1, -1, 0 }, new long[] { 3, 2 });
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => LabelPropagation.Propagate(x, new[] { 0, 1, -1 }, new float[3], 2, neighbors: 3, CancellationToken.None));
        Assert.Contains("1 to 2 neighbours", error.Message);
        Assert.Throws<ArgumentException>(() => LabelPropagation.Propagate(x, new[] { 0, 1 }, new float[3], 2, neighbors: 1, CancellationToken.None));
        Assert.Throws<OperationCanceledException>(() => LabelPropagation.Propagate(x, new[] { 0, 1, -1 }, new float[3], 2, 1, new CancellationToken(true)));

        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.PropagationNeighbors = 0;
        var ml = new MLContext(seed: 1);
        var optionError = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options));
        Assert.Contains("PropagationNeighbors", optionError.Message);
    }

    [Fact]
    public void APseudoLabelerWithThePropagationHeadScoresSavesAndLoadsExactly()
    {
        var ml = new MLContext(seed: 1);
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.PropagationNeighbors = 5;
        using var model = ml.Dpt().PseudoLabeler(options).Fit(data.ToDataView(ml));
        Assert.True(model.Classifier.Network is Models.NormalizedFeatureClassifier);

        var probabilities = model.Classifier.PredictProbabilities(data.Pixels, data.Count);
        Assert.All(probabilities, p => Assert.True(float.IsFinite(p)));
        using var folder = TestData.NewFolder();
        model.Save(folder.File("propagation.dpt"));
        using var loaded = ml.Dpt().LoadPseudoLabeler(folder.File("propagation.dpt"), DptDevice.Cpu);
        Assert.Equal(probabilities, loaded.Classifier.PredictProbabilities(data.Pixels, data.Count));
    }

    [Fact]
    public void TheLearnedMetricOptionMakesThePseudoLabelerSpreadTheLabelsTwice()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(PseudoLabeler))) lock (log) log.Add(e.Message); };
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.PropagationNeighbors = 5;
        options.PropagationLearnsMetric = true;
        using var model = ml.Dpt().PseudoLabeler(options).Fit(data.ToDataView(ml));

        Assert.Contains(log, m => m.Contains("label propagation over 60 images") && m.Contains("twice: then over the first pass's class-whitened features"));
        Assert.All(model.Classifier.PredictProbabilities(data.Pixels, data.Count), p => Assert.True(float.IsFinite(p)));
    }

    [Fact]
    public void FineTuningAddsTheMostCertainPropagatedRowsOfEachClassToTheLabeledSet()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(PseudoLabeler))) lock (log) log.Add(e.Message); };
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);   // 10 labeled, 50 unlabeled rows
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.NumberOfSteps = 2;
        options.PropagationNeighbors = 5;
        options.PropagatedLabelFraction = 0.5;
        using var model = ml.Dpt().PseudoLabeler(options).Fit(data.ToDataView(ml));

        // Every unlabeled row is reached (the graph of 60 rows with 5 neighbours each is connected in practice), and
        // half of each propagated class, rounded up, joins: between 25 and 25 + 10 rows.
        var joined = log.Single(m => m.Contains("join the labeled set"));
        int count = int.Parse(joined[(joined.IndexOf(": ", StringComparison.Ordinal) + 2)..].Split(' ')[0]);
        Assert.InRange(count, 25, 35);
        Assert.Contains(log, m => m.Contains("label propagation over 60 images (5 neighbours each, pixel weight 1, gradient weight 0, patch weight 0, classes balanced)"));
    }

    [Fact]
    public void PropagationAfterFineTuningFitsThePropagationHeadOnTheFineTunedEncoder()
    {
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);   // 10 labeled, 50 unlabeled rows
        PseudoLabeler.Options Options(bool propagateAfter)
        {
            var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
            (options.NumberOfSteps, options.PropagationNeighbors, options.PropagatedLabelFraction) = (3, 5, 0.5);
            options.PropagateAfterFineTuning = propagateAfter;
            return options;
        }
        var ml = new MLContext(seed: 1);
        using var fineTuned = ml.Dpt().PseudoLabeler(Options(false)).Fit(data.ToDataView(ml));
        ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(PseudoLabeler))) lock (log) log.Add(e.Message); };
        using var model = ml.Dpt().PseudoLabeler(Options(true)).Fit(data.ToDataView(ml));

        // The same fine-tuning ran (same seed and data), and the head sits on its encoder, not on the pretrained one.
        var head = Assert.IsType<Models.NormalizedFeatureClassifier>(model.Classifier.Network);
        var expected = fineTuned.Classifier.Network.state_dict();
        foreach (var (name, weight) in head.Encoder.state_dict())
            Assert.True(weight.eq(expected[name]).all().item<bool>(), name);
        Assert.Equal(2, log.Count(m => m.Contains("label propagation over 60 images")));   // before fine-tuning and after
        Assert.Contains(log, m => m.Contains("PropagateAfterFineTuning"));

        var probabilities = model.Classifier.PredictProbabilities(data.Pixels, data.Count);
        using var folder = TestData.NewFolder();
        model.Save(folder.File("refined.dpt"));
        using var loaded = ml.Dpt().LoadPseudoLabeler(folder.File("refined.dpt"), DptDevice.Cpu);
        Assert.Equal(probabilities, loaded.Classifier.PredictProbabilities(data.Pixels, data.Count));

        var frozen = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        frozen.PropagateAfterFineTuning = true;
        Assert.Contains("PropagateAfterFineTuning", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(frozen)).Message);
    }

    /// <summary>An encoder whose features are noise, the same for every call and unrelated to the images.</summary>
    internal sealed class NoiseEncoder : Models.ImageClassifierNetwork
    {
        public NoiseEncoder() : base(nameof(NoiseEncoder)) => RegisterComponents();
        public override int FeatureLength => 64;
        protected internal override Tensor ExtractFeatures(Tensor images) =>
            randn(new[] { images.shape[0], FeatureLength }, generator: new Generator(1), device: images.device);
        public override Tensor Head(Tensor features) => zeros(features.shape[0], 10, device: features.device);
    }

    [Fact]
    public void WhenTheFeaturesCarryNothingThePixelsTheirGradientsOrTheirPatchesStillSpreadTheLabels()
    {
        // Trousers and sneakers of the embedded subset, one label each; the other 58 images are unlabeled.
        var train = TestData.FashionMnistSubset.Train;
        var rows = new[] { 1, 7 }.SelectMany(c => Enumerable.Range(0, train.Count).Where(i => train.Labels[i] == c).Take(30)).ToArray();
        var images = train.Select(rows);
        var seeds = images.Labels.Select((label, i) => i % 30 == 0 ? label : -1).ToArray();
        var data = new ImageDataset(images.Pixels, seeds, images.Shape, images.ClassNames);
        using var encoder = new NoiseEncoder();
        var log = new List<string>();
        var unlabeled = Enumerable.Range(0, data.Count).Where(i => seeds[i] < 0).ToArray();
        int Right(double pixelWeight, double gradientWeight, double patchWeight = 0)
        {
            var graph = new PropagationSettings(Neighbors: 5, pixelWeight, gradientWeight, BalanceClasses: false, PatchWeight: patchWeight);
            var (labels, _) = FrozenFeatureHead.PropagateLabels(encoder, 0, false, data, graph, CPU, CancellationToken.None, log.Add);
            return unlabeled.Count(i => labels[i] == images.Labels[i]);
        }

        // Chance is half of the 58; the two classes look nothing alike, so the pixels' neighbours share their class,
        // and so do the neighbours by edge directions (trousers' edges run up and down, sneakers' mostly across).
        int featuresAlone = Right(0, 0), withPixels = Right(1, 0), withGradients = Right(0, 1), withPatches = Right(0, 0, 1);
        Assert.True(featuresAlone <= 0.75 * unlabeled.Length, $"noise features alone: {featuresAlone} of {unlabeled.Length} right");
        Assert.True(withPixels >= 0.9 * unlabeled.Length, $"noise features and pixels: {withPixels} of {unlabeled.Length} right");
        Assert.True(withGradients >= 0.9 * unlabeled.Length, $"noise features and gradient histograms: {withGradients} of {unlabeled.Length} right");
        Assert.True(withPatches >= 0.9 * unlabeled.Length, $"noise features and the patch dictionary: {withPatches} of {unlabeled.Length} right");
        Assert.Contains(log, m => m.Contains("(5 neighbours each, pixel weight 0, gradient weight 0, patch weight 0, classes unbalanced)"));
        Assert.Contains(log, m => m.Contains("(5 neighbours each, pixel weight 1, gradient weight 0, patch weight 0, classes unbalanced)"));
        Assert.Contains(log, m => m.Contains("(5 neighbours each, pixel weight 0, gradient weight 1, patch weight 0, classes unbalanced)"));
        Assert.Contains(log, m => m.Contains("(5 neighbours each, pixel weight 0, gradient weight 0, patch weight 1, classes unbalanced)"));
        Assert.Contains(log, m => m.StartsWith("patch dictionary of 400 shapes fitted and 60 images described"));

        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.PropagationPixelWeight = -1;
        Assert.Contains("PropagationPixelWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext(1).Dpt().PseudoLabeler(options)).Message);
        options.PropagationPixelWeight = 1;
        options.PropagationGradientWeight = double.PositiveInfinity;
        Assert.Contains("PropagationGradientWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext(1).Dpt().PseudoLabeler(options)).Message);
        options.PropagationGradientWeight = 1;
        options.PropagationPatchWeight = double.NaN;
        Assert.Contains("PropagationPatchWeight", Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext(1).Dpt().PseudoLabeler(options)).Message);
    }

    [Fact]
    public void PropagatedLabelsNeedAPretrainedEncoderAndTheFineTuneHead()
    {
        var ml = new MLContext(seed: 1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.PropagatedLabelFraction = 0.5;
        options.Pretraining = null;
        var error = Assert.Throws<InvalidOperationException>(() => ml.Dpt().PseudoLabeler(options).Fit(FewLabelSplit.Apply(TestData.SmallTrain(2), 1, 1).ToDataView(ml)));
        Assert.Equal("PseudoLabeler: PropagatedLabelFraction spreads labels over a pretrained encoder's features; set Pretraining.", error.Message);

        options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.PropagatedLabelFraction = 0.5;
        Assert.Contains("PropagatedLabelFraction", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
        options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.PropagatedLabelFraction = 1.5;
        Assert.Contains("a fraction in [0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
    }
}
