using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Evaluation;

/// <summary>
/// Fréchet distance between two sets of images in the feature space of a fixed reference classifier:
/// FD = |μ₁ − μ₂|² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½), the formula of FID with a domain classifier in place of
/// Inception (which is not available offline and does not suit 28x28 grayscale images).
/// </summary>
public sealed class FrechetDistance
{
    private const int BatchSize = 500;
    private readonly TrainedClassifier _reference;

    /// <summary>Measures in the pooled-feature space of <paramref name="reference"/> (trained on all labels of the data set).</summary>
    public FrechetDistance(TrainedClassifier reference) => _reference = reference;

    /// <summary>FD between two image sets [N, C, H, W] in [0, 1].</summary>
    public double Compute(float[] imagesA, int countA, float[] imagesB, int countB) =>
        Between(Features(imagesA, countA), Features(imagesB, countB));

    /// <summary>Pooled features of the reference classifier, [count, d], in double precision on the CPU.</summary>
    public Tensor Features(float[] images, int count)
    {
        if (count < 2) throw new ArgumentException($"A Fréchet distance needs at least 2 images per set; got {count}.", nameof(count));
        var features = ImageBatches.Map(images, count, _reference.Shape, _reference.Device, _reference.Network.Features, BatchSize);
        return tensor(features, new long[] { count, features.Length / count }).to(ScalarType.Float64);
    }

    /// <summary>FD between two feature sets [N, d] (double precision).</summary>
    public static double Between(Tensor featuresA, Tensor featuresB)
    {
        using var scope = NewDisposeScope();
        var (meanA, covA) = Moments(featuresA);
        var (meanB, covB) = Moments(featuresB);
        // Tr((Σ₁Σ₂)^½) = Σ √eig(Σ₁^½ Σ₂ Σ₁^½): the product inside is symmetric positive semi-definite, so eigh applies.
        var rootA = SymmetricSqrt(covA);
        var middle = rootA.matmul(covB).matmul(rootA);
        middle = (middle + middle.t()) / 2;
        var traceRoot = linalg.eigvalsh(middle).clamp_min(0).sqrt().sum();
        var distance = (meanA - meanB).pow(2).sum() + covA.trace() + covB.trace() - 2 * traceRoot;
        return Math.Max(0, distance.item<double>());
    }

    private static (Tensor Mean, Tensor Covariance) Moments(Tensor features)
    {
        var mean = features.mean(new long[] { 0 });
        var centred = features - mean;
        return (mean, centred.t().matmul(centred) / (features.shape[0] - 1));
    }

    private static Tensor SymmetricSqrt(Tensor matrix)
    {
        var (values, vectors) = linalg.eigh(matrix);
        return vectors.matmul(diag(values.clamp_min(0).sqrt())).matmul(vectors.t());
    }
}
