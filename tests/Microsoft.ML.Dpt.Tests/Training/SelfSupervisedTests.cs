using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Tests.Stages;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Microsoft.ML.Dpt.Training.SelfSupervised;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class SelfSupervisedTests
{
    internal static PseudoLabeler.Options FrozenHeadOptions(FewLabelHead head, int pretrainingSteps = 4)
    {
        var options = new PseudoLabeler.Options
        {
            Head = head, NetworkWidth = 4, Device = DptDevice.Cpu, LogInterval = 2,
            Pretraining = new ContrastivePretrainingOptions { NumberOfSteps = pretrainingSteps, BatchSize = 16 },
        };
        if (options.FitsLogisticRegressionHead) options.HeadL2Regularization = 1e-4;   // nearest class mean has no regularisation
        return options;
    }

    [Theory]
    [InlineData(FewLabelHead.NearestClassMean, false)]
    [InlineData(FewLabelHead.FineTune, false)]
    [InlineData(FewLabelHead.LogisticRegression, true)]
    [InlineData(FewLabelHead.LabelPropagation, true)]
    public void AHeadL2RegularisationIsRefusedWhereNoLogisticRegressionHeadWouldReadIt(FewLabelHead head, bool read)
    {
        var ml = new MLContext(1);
        var options = new PseudoLabeler.Options { Head = head, Pretraining = new ContrastivePretrainingOptions(), Device = DptDevice.Cpu };
        Assert.Equal(0.01, options.HeadL2Regularization);   // the default, where it is read
        ml.Dpt().PseudoLabeler(options);                     // left unset: fine for every head

        options.HeadL2Regularization = 0.5;
        if (read)
        {
            ml.Dpt().PseudoLabeler(options);
            return;
        }
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message;
        Assert.StartsWith("Option HeadL2Regularization is 0.5", error);
        Assert.Contains("left unset unless a logistic-regression head is fitted", error);
        if (head != FewLabelHead.FineTune) return;
        options.PropagateAfterFineTuning = true;   // the head fitted after fine-tuning reads it
        ml.Dpt().PseudoLabeler(options);
    }

    [Fact]
    public void NtXentMatchesItsClosedForm()
    {
        // Two images whose views coincide and are orthogonal to the other image: each row has similarity 1 to its
        // twin and 0 to the two other rows, so the loss is -log(e^(1/τ) / (e^(1/τ) + 2)).
        using var z = tensor(new float[] { 1, 0, 0, 1, 2, 0, 0, 3 }, new long[] { 4, 2 });
        double tau = 0.5;
        double expected = -Math.Log(Math.Exp(1 / tau) / (Math.Exp(1 / tau) + 2));
        Assert.Equal(expected, NtXentLoss.Compute(z, tau).item<float>(), 5);
    }

    [Fact]
    public void ContrastiveViewsKeepShapeAndRangeAndDifferBetweenCalls()
    {
        random.manual_seed(1);
        var images = tensor(TestData.SmallTrain(1).Pixels, new long[] { 10, 1, 28, 28 });
        var augmentation = new Augmentation(new AugmentationPolicy());
        using var first = augmentation.Contrastive(images, 0.3);
        using var second = augmentation.Contrastive(images, 0.3);
        Assert.Equal(images.shape, first.shape);
        Assert.True(first.min().item<float>() >= 0 && first.max().item<float>() <= 1);
        Assert.True((first - second).abs().mean().item<float>() > 0.01);
    }

    [Theory]
    [InlineData(FewLabelHead.LogisticRegression, 0.0, 0)]
    [InlineData(FewLabelHead.NearestClassMean, 0.0, 0)]
    [InlineData(FewLabelHead.LogisticRegression, 1.0, 0)]   // the head also reads the orientation histograms
    [InlineData(FewLabelHead.LogisticRegression, 1.0, 2)]   // and the encoder's last map on a 2 x 2 grid
    public void AFrozenHeadPredictsItsOwnLabeledRowsAndRoundTripsExactly(FewLabelHead head, double gradientWeight, int grid)
    {
        var ml = new MLContext(seed: 1);
        var data = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1);
        var options = FrozenHeadOptions(head);
        options.HeadGradientWeight = gradientWeight;
        options.FeatureGrid = grid;
        using var model = ml.Dpt().PseudoLabeler(options).Fit(data.ToDataView(ml));
        var network = Assert.IsType<Models.NormalizedFeatureClassifier>(model.Classifier.Network);
        Assert.Equal(gradientWeight, network.GradientWeight);
        Assert.Equal(grid, network.FeatureGrid);
        Assert.Equal(network.Encoder.FeatureLength * (1 + grid * grid) + (gradientWeight > 0 ? 441 : 0), network.FeatureLength);

        // One label per class: the class mean is that row's own feature and a nearly unregularised logistic
        // regression separates ten points, so every labeled row is predicted as its own class.
        var labeledRows = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] >= 0).ToArray();
        var labeled = data.Select(labeledRows);
        var probabilities = model.Classifier.PredictProbabilities(labeled.Pixels, labeled.Count);
        for (int i = 0; i < labeled.Count; i++)
            Assert.Equal(labeled.Labels[i], Enumerable.Range(0, 10).MaxBy(c => probabilities[i * 10 + c]));

        using var folder = TestData.NewFolder();
        model.Save(folder.File("frozen.dpt"));
        using var loaded = ml.Dpt().LoadPseudoLabeler(folder.File("frozen.dpt"), DptDevice.Cpu);
        Assert.Equal(probabilities, loaded.Classifier.PredictProbabilities(labeled.Pixels, labeled.Count));
        Assert.Equal(gradientWeight, loaded.Classifier.Spec.HeadGradientWeight);
        Assert.Equal(grid, loaded.Classifier.Spec.FeatureGrid);
    }

    [Fact]
    public void AFrozenHeadWithoutAnEncoderIsAClearError()
    {
        var options = FrozenHeadOptions(FewLabelHead.LogisticRegression);
        options.Pretraining = null;
        var ml = new MLContext(seed: 1);
        var error = Assert.Throws<InvalidOperationException>(() => ml.Dpt().PseudoLabeler(options).Fit(FewLabelSplit.Apply(TestData.SmallTrain(2), 1, 1).ToDataView(ml)));
        Assert.Equal("PseudoLabeler: Head LogisticRegression reads the features of a pretrained encoder; set Pretraining.", error.Message);

        options = FrozenHeadOptions(FewLabelHead.LogisticRegression);
        options.Pretraining!.Temperature = 0;
        Assert.StartsWith("Option Pretraining.Temperature is 0", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(options)).Message);
    }

    [Fact]
    public void Stage3RefitsTheHeadOnGeneratedPlusLabeledFeaturesAndReusesStage1sPretrainingCheckpoint()
    {
        using var folder = TestData.NewFolder();
        var ml = new MLContext(seed: 1);
        var train = FewLabelSplit.Apply(TestData.SmallTrain(6), 1, seed: 1).ToDataView(ml);
        var stage1 = FrozenHeadOptions(FewLabelHead.LogisticRegression);
        stage1.Seed = 5;
        stage1.CheckpointFolder = folder.Path;
        var stage3 = new DptClassifierTrainer.Options
        {
            Head = FewLabelHead.LogisticRegression, NetworkWidth = 4, Device = DptDevice.Cpu, Seed = 5, CheckpointFolder = folder.Path,
            Pretraining = stage1.Pretraining, HeadL2Regularization = 1e-4, GeneratedImageWeight = 0.5,
        };
        var pretrainingReports = new List<string>();
        stage1.Progress = p => pretrainingReports.Add("stage1 " + p.Stage);
        stage3.Progress = p => pretrainingReports.Add("stage3 " + p.Stage);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(DptClassifierTrainer))) lock (log) log.Add(e.Message); };

        var model = ml.Dpt().PseudoLabeler(stage1)
            .Append(ml.Dpt().ConditionalDiffusionAugmenter(ConditionalDiffusionAugmenterTests.TinyOptions()))
            .Append(ml.Dpt().DptClassifierTrainer(stage3)).Fit(train);

        Assert.Contains(log, m => m.Contains("LogisticRegression head on frozen features") && m.Contains("(10 labeled, plus 30 generated)"));
        Assert.Equal(new[] { "stage1 ContrastivePretraining", "stage1 ContrastivePretraining" }, pretrainingReports);   // stage 3 loaded it
        Assert.True(model.FinalClassifier().Classifier.Network is Models.NormalizedFeatureClassifier);
        var scored = model.Transform(TestData.SmallTrain(1).ToDataView(ml));
        Assert.Equal(10, scored.GetColumn<uint>("PredictedLabel").Count());
    }

    [Fact]
    public void PretrainingMakesFeaturesThatAFewLabelHeadCanUse()
    {
        // A learning test on real images: 2 labels per class of the embedded subset. A nearest-class-mean head on an
        // encoder after 200 contrastive steps beats the same head on the randomly initialised encoder.
        var (trainAll, test) = TestData.FashionMnistSubset;
        var ml = new MLContext(seed: 1);
        var train = FewLabelSplit.Apply(trainAll.Select(Enumerable.Range(0, 3000).ToArray()), 2, seed: 1).ToDataView(ml);
        double Accuracy(int pretrainingSteps)
        {
            var options = FrozenHeadOptions(FewLabelHead.NearestClassMean, pretrainingSteps);
            options.NetworkWidth = 8;
            options.Seed = 3;
            options.Pretraining!.BatchSize = 128;
            using var model = ml.Dpt().PseudoLabeler(options).Fit(train);
            return ml.MulticlassClassification.Evaluate(model.Transform(test.ToDataView(ml)), "Label", "Score", "PseudoLabel").MicroAccuracy;
        }
        double random = Accuracy(1), pretrained = Accuracy(200);
        Assert.True(pretrained > random + 0.05, $"pretrained {pretrained:P2}, random encoder {random:P2}");
    }

    [Fact]
    public void LabelPropagationBeatsThePlainHeadOnTheSameEncoderWithOneLabelPerClass()
    {
        // A learning test on real images: 1 label per class of 3,000 embedded training images, one encoder after 300
        // contrastive steps (pretrained once, then read from its checkpoint), scored on the 2,000 test images.
        var (trainAll, test) = TestData.FashionMnistSubset;
        var ml = new MLContext(seed: 1);
        var train = FewLabelSplit.Apply(trainAll.Select(Enumerable.Range(0, 3000).ToArray()), 1, seed: 1).ToDataView(ml);
        using var folder = TestData.NewFolder();
        double Accuracy(FewLabelHead head)
        {
            var options = FrozenHeadOptions(head, 300);
            options.NetworkWidth = 8;
            options.Seed = 3;
            if (options.FitsLogisticRegressionHead) options.HeadL2Regularization = 0.01;
            options.Pretraining!.BatchSize = 128;
            options.CheckpointFolder = folder.Path;
            using var model = ml.Dpt().PseudoLabeler(options).Fit(train);
            return ml.MulticlassClassification.Evaluate(model.Transform(test.ToDataView(ml)), "Label", "Score", "PseudoLabel").MicroAccuracy;
        }
        double plain = Accuracy(FewLabelHead.LogisticRegression), propagated = Accuracy(FewLabelHead.LabelPropagation);
        Assert.True(propagated > plain + 0.03, $"label propagation {propagated:P2}, logistic regression alone {plain:P2}");
    }
}
