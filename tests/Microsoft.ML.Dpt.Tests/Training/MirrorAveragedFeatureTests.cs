using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

/// <summary>Frozen features averaged over each image and its horizontal mirror (<see cref="SemiSupervisedTrainerOptions.MirrorAveragedFeatures"/>).</summary>
public class MirrorAveragedFeatureTests
{
    /// <summary>The images of <paramref name="data"/> mirrored left to right, with the same labels.</summary>
    private static ImageDataset Mirrored(ImageDataset data)
    {
        using var images = data.ToTensor(CPU);
        using var mirrored = images.flip(3).contiguous();
        return new ImageDataset(mirrored.data<float>().ToArray(), data.Labels, data.Shape, data.ClassNames);
    }

    [Fact]
    public void AveragedFeaturesAreTheMeanOverTheImageAndItsMirrorSoBothReadTheSame()
    {
        random.manual_seed(1);
        var data = TestData.SmallTrain(1);
        using var encoder = new SmallCnn(1, 10, 4);
        using var plain = new NormalizedFeatureClassifier(encoder, 10, gradientWeight: 1, data.Shape, featureGrid: 2);
        using var averaged = new NormalizedFeatureClassifier(encoder, 10, gradientWeight: 1, data.Shape, featureGrid: 2, mirrorAveraged: true);
        plain.eval();
        averaged.eval();
        using var images = data.ToTensor(CPU);
        using var mirrored = Mirrored(data).ToTensor(CPU);

        using var ownFeatures = plain.Features(images);
        using var mirrorFeatures = plain.Features(mirrored);
        using var averagedOwn = averaged.Features(images);
        using var averagedMirror = averaged.Features(mirrored);
        // A random CNN and the orientation histograms both tell an image from its mirror ...
        Assert.True((ownFeatures - mirrorFeatures).abs().max().item<float>() > 1e-3f);
        // ... the average cannot, and it is exactly the mean of the two.
        Assert.True((averagedOwn - averagedMirror).abs().max().item<float>() < 1e-5f);
        Assert.True((averagedOwn - (ownFeatures + mirrorFeatures) / 2).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void PropagationOverAveragedFeaturesGivesAnUnlabeledImageAndItsMirrorOneClass()
    {
        // The embedded subset's images beside their mirrors, one label per class among the originals. An unlabeled
        // image and its mirror are the same point of the averaged graph, so they end in the same class. (A labeled
        // image keeps its label, which its mirror's neighbours may outvote.)
        var train = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);
        var mirrors = Mirrored(train);
        var data = ImageDataset.Concatenate(train, new ImageDataset(mirrors.Pixels, mirrors.Labels.Select(_ => -1).ToArray(), mirrors.Shape, mirrors.ClassNames));
        var unlabeled = Enumerable.Range(0, train.Count).Where(i => train.Labels[i] < 0).ToArray();
        random.manual_seed(1);
        using var encoder = new SmallCnn(1, 10, 4);
        var graph = new PropagationSettings(Neighbors: 5, PixelWeight: 1, GradientWeight: 1, BalanceClasses: false);
        int Disagreements(bool mirrorAveraged)
        {
            var (labels, _) = FrozenFeatureHead.PropagateLabels(encoder, 2, mirrorAveraged, data, graph, CPU, CancellationToken.None, _ => { });
            return unlabeled.Count(i => labels[i] != labels[train.Count + i]);
        }

        Assert.Equal(0, Disagreements(true));
        Assert.True(Disagreements(false) > 0, "without averaging, some image and its mirror should land in different classes");
    }

    [Fact]
    public void ThePseudoLabelerSavesTheAveragingAndTheLoadedModelScoresAnImageAndItsMirrorAlike()
    {
        var ml = new MLContext(seed: 1);
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LabelPropagation);
        options.HeadGradientWeight = 1;
        options.FeatureGrid = 2;
        options.MirrorAveragedFeatures = true;
        using var model = ml.Dpt().PseudoLabeler(options).Fit(data.ToDataView(ml));
        Assert.True(Assert.IsType<NormalizedFeatureClassifier>(model.Classifier.Network).MirrorAveraged);
        Assert.True(model.Classifier.Spec.MirrorAveragedFeatures);

        var mirrored = Mirrored(data);
        var probabilities = model.Classifier.PredictProbabilities(data.Pixels, data.Count);
        var mirrorProbabilities = model.Classifier.PredictProbabilities(mirrored.Pixels, mirrored.Count);
        Assert.All(probabilities.Zip(mirrorProbabilities), pair => Assert.True(Math.Abs(pair.First - pair.Second) < 1e-5f, $"{pair.First} against {pair.Second}"));

        using var folder = TestData.NewFolder();
        model.Save(folder.File("mirrored.dpt"));
        using var loaded = ml.Dpt().LoadPseudoLabeler(folder.File("mirrored.dpt"), DptDevice.Cpu);
        Assert.True(loaded.Classifier.Spec.MirrorAveragedFeatures);
        Assert.Equal(probabilities, loaded.Classifier.PredictProbabilities(data.Pixels, data.Count));
    }

    [Fact]
    public void AveragingNeedsFrozenFeatures()
    {
        var ml = new MLContext(1);
        var options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.FineTune);
        options.MirrorAveragedFeatures = true;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message;
        Assert.StartsWith("Option MirrorAveragedFeatures is True", error);
        Assert.Contains("false unless frozen features are read", error);
        options.PropagatedLabelFraction = 0.2;   // the propagation before fine-tuning reads the pretrained features
        ml.Dpt().PseudoLabeler(options);
        // Fine-tuning ends with the network's own head, which has nothing to average.
        Assert.False(options.NetworkSpecFor(new ImageShape(1, 28, 28), 10).MirrorAveragedFeatures);
        options = SelfSupervisedTests.FrozenHeadOptions(FewLabelHead.LogisticRegression);
        options.MirrorAveragedFeatures = true;
        Assert.True(options.NetworkSpecFor(new ImageShape(1, 28, 28), 10).MirrorAveragedFeatures);
    }
}
