using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.FewLabelHeads;

/// <summary>
/// Spreads a few labels over a k-nearest-neighbour graph of image features (Zhou et al., "Learning with Local and
/// Global Consistency", 2004, as Iscen et al., "Label Propagation for Deep Semi-supervised Learning", CVPR 2019, use it):
/// the graph links each image to its <c>k</c> most similar images, weighted by (cosine similarity)^3 and made
/// symmetric; then (I − αS) Z = Y is solved by conjugate gradients, with S the graph's symmetrically normalised
/// affinity and Y the labeled images' one-hot rows, each class's column scaled to sum to one so that every class
/// spreads with the same mass. Each image takes the class of its largest score; its certainty is one minus the
/// normalised entropy of its scores. Everything runs as tensor operations on the features' device.
/// Optionally the scores are first rebalanced so that each class takes a given share of the rows (class mass
/// normalisation, Zhu et al. 2003): left alone, a class whose few labels sit in a dense region claims far more
/// than its share.
/// Optionally the labels are spread twice (<c>learnMetric</c>): the second time over a graph in which the features
/// are first whitened by the within-class scatter of the first pass's classes, the metric of linear discriminant
/// analysis learnt from pseudo-labels. Directions in which images of one class differ a lot (pose, size, pattern)
/// then count less in the similarity, and directions that set classes apart count more.
/// </summary>
internal static class LabelPropagation
{
    /// <summary>α: how far labels travel along the graph (close to 1: far). Iscen et al.'s value.</summary>
    private const double Alpha = 0.99;

    /// <summary>Exponent on the similarities, which sharpens the graph towards the closest neighbours (Iscen et al.'s value).</summary>
    private const int Sharpening = 3;

    /// <summary>
    /// Most conjugate-gradient iterations. Each one carries labels one more hop along the graph, so this bounds the
    /// reach; on image features the graph's diameter is small and the tolerance ends it far sooner (Iscen et al. stop
    /// at 20).
    /// </summary>
    private const int MaxIterations = 200;

    /// <summary>Stop once every class's residual norm is below this fraction of its initial norm.</summary>
    private const double Tolerance = 1e-5;

    /// <summary>Rows of the similarity matrix computed at a time (a block is <c>BlockRows × count</c> floats).</summary>
    private const int BlockRows = 1024;

    /// <summary>
    /// Ridge added to the within-class scatter before it is inverted, as a fraction of its mean eigenvalue: it keeps
    /// the directions in which the first pass saw almost no spread from being blown up into noise. Fashion-MNIST gave
    /// the same four-label figure at 0.1 and 1 (docs/results.md).
    /// </summary>
    private const double MetricRidge = 0.3;

    /// <summary>Sinkhorn rounds of the class balancing; each ends by normalising the rows, so the class masses end near their targets, not exactly on them.</summary>
    private const int BalancingRounds = 10;

    /// <summary>
    /// Propagates <paramref name="seedWeights"/> over the graph of <paramref name="features"/>.
    /// </summary>
    /// <param name="features"><c>[count, length]</c> L2-normalised features (cosine similarity is their dot product).</param>
    /// <param name="seedLabels">Class of each row, −1 for an unlabeled one.</param>
    /// <param name="seedWeights">How much each labeled row counts (1 for a real label; generated images may count less); ignored for unlabeled rows.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="neighbors">k, the neighbours per image.</param>
    /// <param name="cancel">Checked between blocks of the graph and between iterations.</param>
    /// <param name="classShares">The share of the rows that each class should take (summing to 1), or null to take
    /// each row's largest score as it is.</param>
    /// <param name="learnMetric">Whether to spread the labels a second time, over the features whitened by the
    /// first pass's within-class scatter (<see cref="WhitenedByClasses"/>).</param>
    /// <returns>Each row's propagated class and its certainty in [0, 1] (0 for a row that no label reaches).</returns>
    public static (int[] Labels, float[] Certainty) Propagate(Tensor features, int[] seedLabels, float[] seedWeights, int classes, int neighbors,
        CancellationToken cancel, float[]? classShares = null, bool learnMetric = false)
    {
        if (classShares is not null && (classShares.Length != classes || classShares.Any(s => !(s >= 0)) || Math.Abs(classShares.Sum() - 1) > 1e-3))
            throw new ArgumentException($"Class shares must be {classes} non-negative numbers summing to 1; got [{string.Join(", ", classShares)}].", nameof(classShares));
        long count = features.shape[0];
        if (seedLabels.Length != count || seedWeights.Length != count)
            throw new ArgumentException($"{count} feature rows need as many seed labels and weights; got {seedLabels.Length} and {seedWeights.Length}.");
        if (neighbors < 1 || neighbors >= count)
            throw new ArgumentOutOfRangeException(nameof(neighbors), $"Label propagation needs 1 to {count - 1} neighbours per image (one fewer than the images); got {neighbors}.");

        using var scope = NewDisposeScope();
        var device = features.device;
        var seeds = zeros(count, classes, device: device);
        var labeledRows = Enumerable.Range(0, (int)count).Where(i => seedLabels[i] >= 0).Select(i => (long)i).ToArray();
        if (labeledRows.Length > 0)
        {
            var rows = tensor(labeledRows, device: device);
            var columns = tensor(labeledRows.Select(i => (long)seedLabels[i]).ToArray(), device: device);
            seeds.index_put_(tensor(labeledRows.Select(i => seedWeights[i]).ToArray(), device: device), rows, columns);
        }
        seeds.div_(seeds.sum(0, keepdim: true).clamp_min(1e-12));   // every class spreads the same mass
        var shares = classShares is null ? null : tensor(classShares, device: device);

        var probabilities = Spread(features, seeds, neighbors, shares, cancel);
        if (learnMetric)
        {
            cancel.ThrowIfCancellationRequested();
            probabilities = Spread(WhitenedByClasses(features, probabilities), seeds, neighbors, shares, cancel);
        }

        // Certainty: 1 − H(p)/log C of the scores as a distribution; rows no label reached have all-zero scores.
        var reached = probabilities.sum(1) > 0;
        var entropy = -(probabilities * probabilities.clamp_min(1e-30).log()).sum(1);
        var certainty = where(reached, 1 - entropy / Math.Log(classes), zeros_like(entropy)).clamp(0, 1);
        return (probabilities.argmax(1).to(ScalarType.Int32).cpu().data<int>().ToArray(), certainty.cpu().data<float>().ToArray());
    }

    /// <summary>
    /// One pass: builds the graph of <paramref name="features"/>, solves for the scores and returns them as
    /// distributions over the classes (the positive part, normalised; all zero for a row no label reaches),
    /// balanced to <paramref name="classShares"/> when given. Its own scope frees the pass's graph and solver state
    /// before a second pass builds another.
    /// </summary>
    private static Tensor Spread(Tensor features, Tensor seeds, int neighbors, Tensor? classShares, CancellationToken cancel)
    {
        using var scope = NewDisposeScope();
        var (indices, affinities) = NearestNeighbors(features, neighbors, cancel);
        var scores = ConjugateGradient(new SymmetricGraph(indices, affinities), seeds, cancel);
        var positive = scores.clamp_min(0);
        var total = positive.sum(1, keepdim: true);
        var probabilities = positive / total.clamp_min(1e-30);
        var result = classShares is null ? probabilities : Balance(probabilities, classShares * (total > 0).sum().to(ScalarType.Float32));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The features whitened by the within-class scatter that <paramref name="probabilities"/> (soft classes, one
    /// row per feature row) imply, then centred and L2-normalised: x ↦ (S_w + λI)^−½ x with S_w the mean over the
    /// reached rows of (x − Σ_c p_c μ_c)(x − Σ_c p_c μ_c)ᵀ, μ_c the classes' weighted means and λ =
    /// <see cref="MetricRidge"/> times S_w's mean eigenvalue, and the centre the mean of the reached rows. Rows that
    /// no label reached count in neither.
    /// </summary>
    internal static Tensor WhitenedByClasses(Tensor features, Tensor probabilities)
    {
        using var scope = NewDisposeScope();
        long length = features.shape[1];
        var reached = (probabilities.sum(1, keepdim: true) > 0).to(features.dtype);
        var classMeans = probabilities.t().matmul(features) / probabilities.sum(0, keepdim: false).clamp_min(1e-12).unsqueeze(1);
        var residuals = (features - probabilities.matmul(classMeans)) * reached;
        var scatter = residuals.t().matmul(residuals) / reached.sum().clamp_min(1);
        var ridge = MetricRidge * scatter.diagonal().mean();
        var (eigenvalues, eigenvectors) = linalg.eigh(scatter + ridge * eye(length, device: features.device, dtype: features.dtype));
        var whitened = features.matmul(eigenvectors * eigenvalues.rsqrt().unsqueeze(0));
        var centre = (whitened * reached).sum(0, keepdim: true) / reached.sum().clamp_min(1);
        return nn.functional.normalize(whitened - centre, dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sinkhorn balancing: alternately scales each class's column to its target mass and each row back to a
    /// distribution, so that the classes take their shares. Every row is reweighted by the same class factors, so
    /// the rows that lean furthest to a class still do, and rows that no label reached stay zero.
    /// </summary>
    internal static Tensor Balance(Tensor probabilities, Tensor classMasses)
    {
        var balanced = probabilities;
        for (int round = 0; round < BalancingRounds; round++)
        {
            balanced = balanced * (classMasses / balanced.sum(0, keepdim: false).clamp_min(1e-30));
            balanced = balanced / balanced.sum(1, keepdim: true).clamp_min(1e-30);
        }
        return balanced;
    }

    /// <summary>Each row's <paramref name="k"/> most similar other rows and their affinities max(similarity, 0)^3.</summary>
    private static (Tensor Indices, Tensor Affinities) NearestNeighbors(Tensor features, int k, CancellationToken cancel)
    {
        long count = features.shape[0];
        var indices = new List<Tensor>();
        var affinities = new List<Tensor>();
        var all = features.t();
        for (long start = 0; start < count; start += BlockRows)
        {
            cancel.ThrowIfCancellationRequested();
            long rows = Math.Min(BlockRows, count - start);
            using var similarity = features.narrow(0, start, rows).matmul(all);
            // An image is not its own neighbour.
            similarity.scatter_(1, arange(start, start + rows, device: features.device).unsqueeze(1), tensor(float.NegativeInfinity, device: features.device).expand(rows, 1));
            var (values, index) = similarity.topk(k, dim: 1);
            indices.Add(index);
            affinities.Add(values.clamp_min(0).pow(Sharpening));
            values.Dispose();
        }
        return (cat(indices, 0), cat(affinities, 0));
    }

    /// <summary>
    /// Solves (I − αS) Z = Y column by column (all classes at once) by conjugate gradients; one host read per
    /// iteration checks convergence (this runs once per fit, not per training step).
    /// </summary>
    private static Tensor ConjugateGradient(SymmetricGraph graph, Tensor seeds, CancellationToken cancel)
    {
        Tensor Apply(Tensor x) => x - Alpha * graph.NormalizedProduct(x);
        var solution = zeros_like(seeds);
        var residual = seeds.clone();
        var direction = residual.clone();
        // sum(0, keepdim: false), not sum(0): a bare 0 converts to ScalarType and picks the dtype overload.
        var residualNorm = (residual * residual).sum(0, keepdim: false);
        double target = Tolerance * Tolerance * residualNorm.max().item<float>();
        for (int iteration = 0; iteration < MaxIterations && residualNorm.max().item<float>() > target; iteration++)
        {
            cancel.ThrowIfCancellationRequested();
            using var step = NewDisposeScope();
            var applied = Apply(direction);
            var length = residualNorm / (direction * applied).sum(0, keepdim: false).clamp_min(1e-30);
            solution.add_(length * direction);
            residual.sub_(length * applied);
            var nextNorm = (residual * residual).sum(0, keepdim: false);
            direction = (residual + nextNorm / residualNorm.clamp_min(1e-30) * direction).MoveToOuterDisposeScope();
            residualNorm = nextNorm.MoveToOuterDisposeScope();
        }
        return solution;
    }

    /// <summary>
    /// The symmetric graph W = A + Aᵀ of a k-nearest-neighbour list A (row i holds its neighbours' indices and
    /// affinities), kept as that list: A·x gathers, Aᵀ·x scatters, so the dense <c>count × count</c> matrix never exists.
    /// </summary>
    private sealed class SymmetricGraph
    {
        private readonly Tensor indices;
        private readonly Tensor affinities;
        private readonly Tensor inverseRootDegree;

        public SymmetricGraph(Tensor indices, Tensor affinities)
        {
            this.indices = indices;
            this.affinities = affinities;
            var degree = Product(ones(indices.shape[0], 1, device: indices.device));
            inverseRootDegree = degree.clamp_min(1e-12).rsqrt();
        }

        /// <summary>D^−½ W D^−½ x for <paramref name="x"/> <c>[count, columns]</c>.</summary>
        public Tensor NormalizedProduct(Tensor x) => inverseRootDegree * Product(inverseRootDegree * x);

        /// <summary>W x = A x + Aᵀ x.</summary>
        private Tensor Product(Tensor x)
        {
            long columns = x.shape[1];
            var weighted = affinities.unsqueeze(2);
            var gathered = (weighted * x.index_select(0, indices.flatten()).view(indices.shape[0], indices.shape[1], columns)).sum(1);
            var scattered = zeros_like(x).index_add_(0, indices.flatten(), (weighted * x.unsqueeze(1)).view(-1, columns), 1);
            return gathered + scattered;
        }
    }
}
