using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Encoders;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

/// <summary>A frozen-feature head that reads the images' orientation histograms beside the encoder's features.</summary>
public class HistogramHeadTests
{
    private static readonly PropagationSettings Graph = new(Neighbors: 5, PixelWeight: 0, GradientWeight: 0, BalanceClasses: false);

    /// <summary>Trousers (class 1) and sneakers (class 7) of the embedded subset's <paramref name="split"/>.</summary>
    private static ImageDataset TrousersAndSneakers(ImageDataset split) =>
        split.Select(Enumerable.Range(0, split.Count).Where(i => split.Labels[i] is 1 or 7).ToArray());

    [Fact]
    public void WhenTheFeaturesCarryNothingAHeadThatReadsTheHistogramsStillClassifies()
    {
        var (train, test) = TestData.FashionMnistSubset;
        var labeledImages = TrousersAndSneakers(train);
        var labeled = labeledImages.Select(new[] { 1, 7 }.SelectMany(c => Enumerable.Range(0, labeledImages.Count).Where(i => labeledImages.Labels[i] == c).Take(4)).ToArray());
        var unseen = TrousersAndSneakers(test);
        double Accuracy(double gradientWeight)
        {
            using var head = FrozenFeatureHead.Fit(new LabelPropagationTests.NoiseEncoder(), FewLabelHead.LogisticRegression, gradientWeight, 0, false, labeled, null,
                1, 0.01, Graph, seed: 1, CPU, CancellationToken.None, _ => { });
            using var logits = head.forward(unseen.ToTensor(CPU));
            var predicted = logits.argmax(1).data<long>().ToArray();
            return Enumerable.Range(0, unseen.Count).Count(i => predicted[i] == unseen.Labels[i]) / (double)unseen.Count;
        }

        // Four labels of each class; the noise features say nothing about unseen images (chance is about one half),
        // while trousers' edges run up and down and sneakers' mostly across.
        double featuresAlone = Accuracy(0), withHistograms = Accuracy(1);
        Assert.True(featuresAlone <= 0.75, $"noise features alone: {featuresAlone:P1} of {unseen.Count} unseen images right");
        Assert.True(withHistograms >= 0.9, $"noise features and gradient histograms: {withHistograms:P1} of {unseen.Count} unseen images right");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(0.5)]
    public void TheRowsTheHeadIsFittedOnAreWhatItReadsWhenItScores(double gradientWeight)
    {
        var images = TestData.SmallTrain(2);
        using var classifier = new NormalizedFeatureClassifier(new LabelPropagationTests.NoiseEncoder(), 10, gradientWeight, images.Shape);
        Assert.Equal(64 + (gradientWeight > 0 ? 441 : 0), classifier.FeatureLength);
        using var batch = images.ToTensor(CPU);
        using var features = classifier.Features(batch);
        var flat = features.data<float>().ToArray();
        var mean = FrozenFeatureHead.Mean(flat, classifier.FeatureLength);
        classifier.SetHead(mean, new float[10 * classifier.FeatureLength], new float[10]);

        // The host's description (what the logistic regression is fitted on) against the module's (what scores).
        var host = FrozenFeatureHead.Describe(flat, classifier.FeatureLength, mean, 64, gradientWeight);
        using var device = classifier.Normalize(features);
        var read = device.data<float>().ToArray();
        for (int i = 0; i < images.Count; i++)
            for (int j = 0; j < classifier.FeatureLength; j++)
                Assert.True(Math.Abs(host[i][j] - read[i * classifier.FeatureLength + j]) < 1e-5, $"row {i}, value {j}: {host[i][j]} against {read[i * classifier.FeatureLength + j]}");

        // Each part counts as its weight says: the encoder's share of the squared length is 1 / (1 + w²).
        double encoderShare = host[0].Take(64).Sum(v => (double)v * v);
        Assert.Equal(1 / (1 + gradientWeight * gradientWeight), encoderShare, 4);
    }

    [Fact]
    public void AHeadThatReadsHistogramsNeedsTheImageShapeAndAFrozenHead()
    {
        Assert.Throws<ArgumentNullException>(() => new NormalizedFeatureClassifier(new LabelPropagationTests.NoiseEncoder(), 10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NormalizedFeatureClassifier(new LabelPropagationTests.NoiseEncoder(), 10, -1, new ImageShape(1, 28, 28)));

        var ml = new MLContext(1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LogisticRegression);
        options.HeadGradientWeight = double.NaN;
        Assert.StartsWith("Option HeadGradientWeight is NaN", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
        options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.HeadGradientWeight = 1;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message;
        Assert.Contains("HeadGradientWeight", error);
        Assert.Contains("0 unless a frozen-feature head is fitted", error);
        options.PropagateAfterFineTuning = true;
        ml.Dpt().PseudoLabeler(options);   // the head fitted after fine-tuning can read them
    }

    [Fact]
    public void AFeatureGridNeedsAFeatureMapAndFrozenFeatures()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NormalizedFeatureClassifier(new LabelPropagationTests.NoiseEncoder(), 10, featureGrid: -1));
        var noMap = Assert.Throws<ArgumentException>(() => new NormalizedFeatureClassifier(new LabelPropagationTests.NoiseEncoder(), 10, featureGrid: 2));
        Assert.Contains("pooled features only", noMap.Message);

        var ml = new MLContext(1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LogisticRegression);
        options.FeatureGrid = 9;
        Assert.StartsWith("Option FeatureGrid is 9", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
        options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.FeatureGrid = 2;
        Assert.False(options.FitsFrozenFeatureHead);
        Assert.False(options.ReadsFrozenCnnFeatures);
        Assert.Contains("0 unless frozen features are read", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
        options.PropagatedLabelFraction = 0.2;
        Assert.False(options.FitsFrozenFeatureHead);   // fine-tuning ends with the network's own head ...
        Assert.True(options.ReadsFrozenCnnFeatures);   // ... but the propagation before it reads the pretrained features
        ml.Dpt().PseudoLabeler(options);
        options = new Dpt.Stages.PseudoLabeler.Options { Head = FewLabelHead.LogisticRegression, Encoder = OnnxImageEncoder.ResNet18(), FeatureGrid = 1 };
        Assert.True(options.FitsFrozenFeatureHead);
        Assert.False(options.ReadsFrozenCnnFeatures);
        Assert.Contains("ONNX", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
    }
}
