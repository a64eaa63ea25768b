using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;

namespace Microsoft.ML.Dpt.Evaluation;

/// <summary>
/// Class faithfulness of generated images: the share of the images generated for each class that a reference
/// classifier trained on real labels puts in that class. It is the converse of the
/// <see cref="ClassificationAccuracyScore"/> (which trains on generated images and tests on real ones) and needs no
/// training, so it reads what stage 3 will be given: images that a classifier of real images can or cannot recognise.
/// </summary>
public static class ClassFaithfulness
{
    /// <summary>
    /// Classifies <paramref name="generated"/> with <paramref name="reference"/> and compares each prediction with the
    /// class the image was generated for.
    /// </summary>
    /// <param name="reference">A classifier of real images, ideally trained on every label of the data set.</param>
    /// <param name="generated">Generated images, each labelled with the class it was generated for.</param>
    /// <exception cref="ArgumentException">An image has no class, the shapes or class counts differ, or a class has no image.</exception>
    public static ClassFaithfulnessResult Compute(TrainedClassifier reference, ImageDataset generated)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(generated);
        if (generated.Shape != reference.Shape)
            throw new ArgumentException($"Generated images are {generated.Shape}; the reference classifier reads {reference.Shape}.", nameof(generated));
        int classes = reference.ClassNames.Count;
        if (generated.ClassNames.Count != classes)
            throw new ArgumentException($"The generated images have {generated.ClassNames.Count} classes; the reference classifier has {classes}.", nameof(generated));
        if (generated.Labels.Any(l => l < 0)) throw new ArgumentException("Every generated image needs the class it was generated for.", nameof(generated));

        var predicted = reference.PredictClasses(generated.Pixels, generated.Count);
        var right = new int[classes];
        var total = new int[classes];
        for (int i = 0; i < generated.Count; i++)
        {
            int label = generated.Labels[i];
            total[label]++;
            if (predicted[i] == label) right[label]++;
        }
        int missing = Array.IndexOf(total, 0);
        if (missing >= 0)
            throw new ArgumentException($"Class {missing} ('{generated.ClassNames[missing]}') has no generated image; faithfulness is measured per class.", nameof(generated));
        return new ClassFaithfulnessResult(right.Sum() / (double)generated.Count, right.Zip(total, (r, t) => r / (double)t).ToArray());
    }
}

/// <summary>What <see cref="ClassFaithfulness.Compute"/> measured.</summary>
/// <param name="Overall">Share of all generated images that the reference puts in their class.</param>
/// <param name="PerClass">The same share for the images of each class, in class order.</param>
public sealed record ClassFaithfulnessResult(double Overall, IReadOnlyList<double> PerClass);
