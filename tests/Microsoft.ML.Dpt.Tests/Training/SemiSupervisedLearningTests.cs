using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.Dpt.Tests.Training;

/// <summary>
/// The one learning test: on real Fashion-MNIST images with 4 labels per class, FreeMatch uses the 5,960
/// unlabeled images to beat supervised-only training on the same 40 labels, same seed and same budget.
/// </summary>
public class SemiSupervisedLearningTests
{
    private readonly ITestOutputHelper _output;

    public SemiSupervisedLearningTests(ITestOutputHelper output) => _output = output;

    private static PseudoLabeler.Options Budget(SemiSupervisedAlgorithm algorithm) => new()
    {
        Algorithm = algorithm, NumberOfSteps = 750, BatchSize = 32, UnlabeledRatio = 3, NetworkWidth = 16,
        Device = DptDevice.Cpu, Seed = 1, KeepKnownLabels = false, LogInterval = 500,
    };

    [Fact]
    public void FreeMatchBeatsSupervisedOnlyWithFourLabelsPerClass()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.FashionMnistSubset;
        var fewLabels = FewLabelSplit.Apply(train, labelsPerClass: 4, seed: 1).ToDataView(ml);
        var testView = test.ToDataView(ml);

        double Accuracy(SemiSupervisedAlgorithm algorithm)
        {
            using var model = ml.Dpt().PseudoLabeler(Budget(algorithm)).Fit(fewLabels);
            double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(testView), "Label", "Score", "PseudoLabel").MicroAccuracy;
            _output.WriteLine($"{algorithm}: {accuracy:P2} on {test.Count} test images");
            return accuracy;
        }

        double supervised = Accuracy(SemiSupervisedAlgorithm.SupervisedOnly);
        double freeMatch = Accuracy(SemiSupervisedAlgorithm.FreeMatch);

        // Chance is 10%: both must have learned. With 2,000 test images the standard error of one accuracy is
        // about 1.1 points, so a gain of 3 points is well outside what evaluation noise could produce.
        Assert.InRange(supervised, 0.45, 0.80);
        Assert.True(freeMatch >= supervised + 0.03, $"FreeMatch {freeMatch:P2} should beat supervised-only {supervised:P2} by at least 3 points");
    }
}
