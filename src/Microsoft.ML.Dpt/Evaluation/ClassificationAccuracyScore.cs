using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Microsoft.ML.Dpt.Evaluation;

/// <summary>
/// Classification accuracy score (Ravuri and Vinyals, 2019): train a classifier on generated images only, then
/// measure its accuracy on real test images. It rewards generators whose images carry their class.
/// </summary>
public static class ClassificationAccuracyScore
{
    /// <summary>Trains a supervised classifier with <paramref name="options"/> on <paramref name="generated"/> and returns its accuracy on <paramref name="realTest"/>.</summary>
    public static double Compute(MLContext mlContext, ImageDataset generated, ImageDataset realTest, PseudoLabeler.Options options)
    {
        if (generated.Labels.Any(l => l < 0)) throw new ArgumentException("Every generated image needs its class.", nameof(generated));
        if (generated.Shape != realTest.Shape)
            throw new ArgumentException($"Generated images are {generated.Shape}; the test images are {realTest.Shape}.", nameof(generated));
        options.Algorithm = SemiSupervisedAlgorithm.SupervisedOnly;
        options.KeepKnownLabels = false;
        using var model = new PseudoLabeler(mlContext, options).Fit(generated.ToDataView(mlContext));
        var scored = model.Transform(realTest.ToDataView(mlContext));
        return mlContext.MulticlassClassification.Evaluate(scored, DefaultColumnNames.Label, options.ScoreColumnName, options.PseudoLabelColumnName).MicroAccuracy;
    }
}
