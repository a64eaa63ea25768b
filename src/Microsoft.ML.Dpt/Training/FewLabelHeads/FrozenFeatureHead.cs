using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Trainers;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.FewLabelHeads;

/// <summary>
/// Fits a head on a frozen encoder's features, as DPT does on ImageNet: the features of every real image give the
/// centre μ; each labeled image's feature becomes (f − μ) / ‖f − μ‖ (joined with the image's orientation histograms,
/// normalised the same way, when the head reads them too); then either an L2-regularised multinomial
/// logistic regression (ML.NET's <c>LbfgsMaximumEntropy</c>, with example weights for generated images) or the
/// normalised class means. Either way the result is a <see cref="NormalizedFeatureClassifier"/>, so it scores, saves
/// and loads like every other classifier of the package.
/// </summary>
internal static class FrozenFeatureHead
{
    /// <summary>Cosine similarities to the class means are scaled by this before the softmax, so the confidences are not all near 1/K.</summary>
    private const float NearestMeanScale = 20f;

    /// <summary>Seed of the patch dictionary's draws: fixed, so that the same images always get the same graph.</summary>
    private const int PatchDictionarySeed = 0;

    /// <param name="encoder">The trained encoder (left unchanged).</param>
    /// <param name="kind">Logistic regression or nearest class mean.</param>
    /// <param name="gradientWeight">Weight of the images' orientation histograms beside the features in what the head
    /// reads (<see cref="NormalizedFeatureClassifier.GradientWeight"/>; 0: the features alone). The propagation graph
    /// reads the features alone either way, with its own <see cref="PropagationSettings.GradientWeight"/>.</param>
    /// <param name="featureGrid">The grid over which the head and the graph also read the encoder's last feature map
    /// (<see cref="NormalizedFeatureClassifier.FeatureGrid"/>; 0: its pooled features alone).</param>
    /// <param name="mirrorAveraged">Whether the head and the graph read features averaged over each image and its mirror
    /// (<see cref="NormalizedFeatureClassifier.MirrorAveraged"/>).</param>
    /// <param name="data">All real rows; label −1 marks an unlabeled row, which only contributes to the centre.</param>
    /// <param name="extraLabeled">Generated images (stage 3), or null.</param>
    /// <param name="extraWeight">Weight of a generated image relative to a real labeled one.</param>
    /// <param name="l2">L2 regularisation of the logistic regression.</param>
    /// <param name="graph">How <see cref="FewLabelHead.LabelPropagation"/> builds its graph and reads its result.</param>
    /// <param name="seed">Seed of ML.NET's trainer.</param>
    /// <param name="device">Where the encoder runs.</param>
    /// <param name="cancel">Checked before and between batches of the feature pass.</param>
    /// <param name="log">Receives a progress line every 30 s of a long feature pass (an ONNX encoder on the CPU reads
    /// about 50 images/s).</param>
    public static NormalizedFeatureClassifier Fit(ImageClassifierNetwork encoder, FewLabelHead kind, double gradientWeight, int featureGrid, bool mirrorAveraged,
        ImageDataset data, ImageDataset? extraLabeled, double extraWeight, double l2, PropagationSettings graph, int seed, Device device, CancellationToken cancel,
        Action<string> log)
    {
        int classes = data.ClassNames.Count;
        var classifier = new NormalizedFeatureClassifier(encoder, classes, gradientWeight, data.Shape, featureGrid, mirrorAveraged);
        classifier.to(device);
        classifier.eval();
        int length = classifier.FeatureLength, encoderLength = classifier.EncoderPartLength;
        var realFeatures = Features(classifier.Features, data, device, "real", cancel, log);
        var extraFeatures = extraLabeled is null ? Array.Empty<float>() : Features(classifier.Features, extraLabeled, device, "generated", cancel, log);
        var mean = Mean(realFeatures, length);
        var normalized = Describe(realFeatures, length, mean, encoderLength, gradientWeight);
        var extraNormalized = Describe(extraFeatures, length, mean, encoderLength, gradientWeight);

        var rows = new List<(float[] Feature, int Label, float Weight)>();
        for (int i = 0; i < data.Count; i++)
            if (data.Labels[i] >= 0) rows.Add((normalized[i], data.Labels[i], 1f));
        for (int i = 0; i < extraNormalized.Length; i++)
            rows.Add((extraNormalized[i], extraLabeled!.Labels[i], (float)extraWeight));
        if (kind == FewLabelHead.LabelPropagation)
        {
            // Every unlabeled real row joins with its propagated class, weighted by its certainty (rows no label reaches stay out).
            // The graph reads the encoder's part alone and adds the pixels and histograms at its own weights.
            var (graphRows, extraGraphRows) = gradientWeight == 0
                ? (normalized, extraNormalized)
                : (Describe(realFeatures, length, mean, encoderLength, 0), Describe(extraFeatures, length, mean, encoderLength, 0));
            var (labels, certainty) = Propagate(graphRows, data, extraGraphRows, extraLabeled, (float)extraWeight, graph, mirrorAveraged, device, cancel, log);
            for (int i = 0; i < data.Count; i++)
                if (data.Labels[i] < 0 && certainty[i] > 0) rows.Add((normalized[i], labels[i], certainty[i]));
        }

        var (weights, biases) = kind switch
        {
            FewLabelHead.LogisticRegression or FewLabelHead.LabelPropagation => LogisticRegression(rows, classes, length, l2, seed),
            FewLabelHead.NearestClassMean => NearestClassMean(rows, classes, length),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), $"{kind} is not a frozen-feature head."),
        };
        classifier.SetHead(mean, weights, biases);
        return classifier;
    }

    /// <summary>
    /// Label propagation over the frozen features of <paramref name="network"/> (on <paramref name="featureGrid"/>, see
    /// <see cref="ImageClassifierNetwork.GridFeatures"/>, averaged over each image and its mirror when
    /// <paramref name="mirrorAveraged"/>): every real row's class and its certainty in [0, 1] (a labeled row keeps its
    /// label). Stage 1 fine-tuning adds the most certain rows to its labeled set.
    /// </summary>
    public static (int[] Labels, float[] Certainty) PropagateLabels(ImageClassifierNetwork network, int featureGrid, bool mirrorAveraged, ImageDataset data,
        PropagationSettings graph, Device device, CancellationToken cancel, Action<string> log)
    {
        network.eval();
        int length = network.GridFeatureLength(featureGrid);
        Tensor Extract(Tensor images) => network.GridFeatures(images, featureGrid);
        var features = Features(mirrorAveraged ? images => NormalizedFeatureClassifier.AverageOverMirror(images, Extract) : Extract, data, device, "real", cancel, log);
        var normalized = Describe(features, length, Mean(features, length), length, 0);
        var (labels, certainty) = Propagate(normalized, data, Array.Empty<float[]>(), null, 1f, graph, mirrorAveraged, device, cancel, log);
        for (int i = 0; i < data.Count; i++)
            if (data.Labels[i] >= 0) (labels[i], certainty[i]) = (data.Labels[i], 1f);
        return (labels, certainty);
    }

    /// <summary>The mean of the rows of <paramref name="features"/> (<c>[count, length]</c> row-major).</summary>
    internal static float[] Mean(float[] features, int length)
    {
        int count = features.Length / length;
        var mean = new float[length];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < length; j++) mean[j] += features[i * length + j] / count;
        return mean;
    }

    /// <summary>
    /// Each row of <paramref name="features"/> (<c>[count, stride]</c> row-major) as a head with
    /// <paramref name="gradientWeight"/> reads it (<see cref="NormalizedFeatureClassifier.Normalize"/>): its first
    /// <paramref name="encoderLength"/> values centred on <paramref name="mean"/> and L2-normalised; above weight 0,
    /// joined with the rest (the histograms), centred and normalised the same way and scaled by the weight, and
    /// normalised again.
    /// </summary>
    internal static float[][] Describe(float[] features, int stride, float[] mean, int encoderLength, double gradientWeight) =>
        Enumerable.Range(0, features.Length / stride).Select(i =>
        {
            var row = features.AsSpan(i * stride, stride);
            var encoderPart = Normalize(row[..encoderLength], mean.AsSpan(0, encoderLength));
            if (gradientWeight == 0) return encoderPart;
            var histogramPart = Normalize(row[encoderLength..], mean.AsSpan(encoderLength));
            for (int j = 0; j < histogramPart.Length; j++) histogramPart[j] *= (float)gradientWeight;
            return Normalize(encoderPart.Concat(histogramPart).ToArray(), ReadOnlySpan<float>.Empty);
        }).ToArray();

    /// <summary>
    /// Label propagation over a graph of every real and every generated image: labeled real images seed it with
    /// weight 1, generated ones with <paramref name="extraWeight"/>. An image is described by its normalised features
    /// and, at the graph's pixel, gradient and patch weights, its pixels, its <see cref="OrientationHistograms"/> and its
    /// <see cref="PatchDictionary"/> descriptor, each centred on the real images' mean and L2-normalised; the parts are
    /// joined and normalised again, so that at weight 1 each counts equally in the cosine similarity. With
    /// <paramref name="mirrorAveraged"/> the pixels and descriptors are averaged over each image and its mirror, as the
    /// features are.
    /// With class balancing, each class's share of the propagated rows is its share of the real labeled rows (the
    /// generated ones, which stage 3 may have filtered unevenly, do not count; if a class has no real label, the
    /// shares are equal).
    /// Returns the real rows' classes and certainties.
    /// </summary>
    private static (int[] Labels, float[] Certainty) Propagate(float[][] real, ImageDataset data, float[][] extra, ImageDataset? extraData,
        float extraWeight, PropagationSettings graph, bool mirrorAveraged, Device device, CancellationToken cancel, Action<string> log)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int count = real.Length + extra.Length, length = real[0].Length;
        var seedLabels = data.Labels.Concat(extraData?.Labels ?? Array.Empty<int>()).ToArray();
        var seedWeights = data.Labels.Select(_ => 1f).Concat(extra.Select(_ => extraWeight)).ToArray();
        var flat = new float[(long)count * length];
        for (int i = 0; i < count; i++)
            (i < real.Length ? real[i] : extra[i - real.Length]).CopyTo(flat, (long)i * length);
        int[] labels;
        float[] certainty;
        using (var scope = NewDisposeScope())
        {
            var parts = new List<Tensor> { tensor(flat, new long[] { count, length }, device: device) };
            if (graph.PixelWeight > 0 || graph.GradientWeight > 0 || graph.PatchWeight > 0)
            {
                var images = data.ToTensor(device);
                if (extraData is not null) images = cat(new[] { images, extraData.ToTensor(device) });
                Tensor Read(Func<Tensor, Tensor> extract) => mirrorAveraged ? NormalizedFeatureClassifier.AverageOverMirror(images, extract) : extract(images);
                if (graph.PixelWeight > 0) parts.Add(graph.PixelWeight * CentredAndNormalized(Read(x => x.flatten(1)), real.Length));
                if (graph.GradientWeight > 0) parts.Add(graph.GradientWeight * CentredAndNormalized(Read(OrientationHistograms.Compute), real.Length));
                if (graph.PatchWeight > 0)   // fitted to the real images only: generated ones, in stage 3, are described but do not shape it
                    parts.Add(graph.PatchWeight * CentredAndNormalized(
                        PatchDescriptionCache.Shared.Describe(data, images, mirrorAveraged, PatchDictionarySeed, cancel, log), real.Length));
            }
            var description = parts.Count == 1 ? parts[0] : nn.functional.normalize(cat(parts, 1), dim: 1);
            (labels, certainty) = LabelPropagation.Propagate(description, seedLabels, seedWeights, data.ClassNames.Count, graph.Neighbors, cancel,
                graph.BalanceClasses ? LabeledShares(data) : null, graph.LearnMetric);
        }
        var unlabeled = Enumerable.Range(0, real.Length).Where(i => data.Labels[i] < 0).ToArray();
        int reached = unlabeled.Count(i => certainty[i] > 0);
        log($"label propagation over {count} images ({graph.Neighbors} neighbours each, pixel weight {graph.PixelWeight}, gradient weight {graph.GradientWeight}, patch weight {graph.PatchWeight}, classes {(graph.BalanceClasses ? "balanced" : "unbalanced")}{(mirrorAveraged ? ", averaged over mirrors" : "")}{(graph.LearnMetric ? ", twice: then over the first pass's class-whitened features" : "")}): {reached} of {unlabeled.Length} unlabeled images reached, " +
            $"mean certainty {unlabeled.Select(i => certainty[i]).DefaultIfEmpty().Average():F3}, {clock.Elapsed.TotalSeconds:F1} s");
        return (labels[..real.Length], certainty[..real.Length]);
    }

    /// <summary>Rows centred on the mean of the first <paramref name="realCount"/> (the real images) and L2-normalised.</summary>
    private static Tensor CentredAndNormalized(Tensor rows, int realCount) =>
        nn.functional.normalize(rows - rows.narrow(0, 0, realCount).mean(new long[] { 0 }, keepdim: true), dim: 1);

    /// <summary>Each class's share of the real labeled rows, or equal shares when a class has none.</summary>
    private static float[] LabeledShares(ImageDataset data)
    {
        var counts = new float[data.ClassNames.Count];
        foreach (int label in data.Labels)
            if (label >= 0) counts[label]++;
        if (counts.Contains(0)) return Enumerable.Repeat(1f / counts.Length, counts.Length).ToArray();
        float total = counts.Sum();
        return counts.Select(c => c / total).ToArray();
    }

    /// <summary>What <paramref name="extract"/> gives for every image (in [0, 1]), <c>[count, length]</c> row-major.</summary>
    private static float[] Features(Func<Tensor, Tensor> extract, ImageDataset data, Device device, string what, CancellationToken cancel, Action<string> log)
    {
        const int BatchSize = 128;   // small enough that cancelling waits seconds, not minutes, on a slow encoder
        const double LogSeconds = 30;
        cancel.ThrowIfCancellationRequested();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double lastLog = 0;
        return ImageBatches.Map(data.Pixels, data.Count, data.Shape, device, extract, BatchSize, done =>
        {
            cancel.ThrowIfCancellationRequested();
            double seconds = clock.Elapsed.TotalSeconds;
            if (seconds - lastLog < LogSeconds && (done < data.Count || seconds < LogSeconds)) return;
            log($"features of {done} of {data.Count} {what} images, {done / seconds:F0} images/s");
            lastLog = seconds;
        });
    }

    /// <summary>The feature centred on <paramref name="mean"/> (none when it is empty) and L2-normalised.</summary>
    private static float[] Normalize(ReadOnlySpan<float> feature, ReadOnlySpan<float> mean)
    {
        var centred = new float[feature.Length];
        for (int j = 0; j < centred.Length; j++) centred[j] = mean.IsEmpty ? feature[j] : feature[j] - mean[j];
        float norm = MathF.Max(MathF.Sqrt(centred.Sum(v => v * v)), 1e-12f);
        for (int j = 0; j < centred.Length; j++) centred[j] /= norm;
        return centred;
    }

    private static (float[] Weights, float[] Biases) LogisticRegression(List<(float[] Feature, int Label, float Weight)> rows, int classes, int length, double l2, int seed)
    {
        var ml = new MLContext(seed);
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
        schema[nameof(FeatureRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), classes);
        // LoadFromEnumerable reads key fields as zero-based class indices (see ImageDataset.ToDataView).
        var view = ml.Data.LoadFromEnumerable(rows.Select(r => new FeatureRow { Features = r.Feature, Label = (uint)r.Label, Weight = r.Weight }), schema);
        var trainer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = nameof(FeatureRow.Label), FeatureColumnName = nameof(FeatureRow.Features), ExampleWeightColumnName = nameof(FeatureRow.Weight),
            L2Regularization = (float)l2, L1Regularization = 0, OptimizationTolerance = 1e-8f, MaximumNumberOfIterations = 1000,
            NumberOfThreads = 1,   // deterministic
        });
        var model = trainer.Fit(view).Model;
        VBuffer<float>[] classWeights = Array.Empty<VBuffer<float>>();
        model.GetWeights(ref classWeights, out int fittedClasses);
        if (fittedClasses != classes)
            throw new InvalidOperationException($"The logistic regression fitted {fittedClasses} classes; the data has {classes}.");
        var weights = new float[classes * length];
        for (int c = 0; c < classes; c++) classWeights[c].CopyTo(weights, c * length);
        return (weights, model.GetBiases().ToArray());
    }

    private static (float[] Weights, float[] Biases) NearestClassMean(List<(float[] Feature, int Label, float Weight)> rows, int classes, int length)
    {
        var weights = new float[classes * length];
        foreach (var (feature, label, weight) in rows)
            for (int j = 0; j < length; j++) weights[label * length + j] += weight * feature[j];
        for (int c = 0; c < classes; c++)
        {
            var row = weights.AsSpan(c * length, length);
            float norm = 0;
            foreach (var v in row) norm += v * v;
            norm = MathF.Max(MathF.Sqrt(norm), 1e-12f);
            for (int j = 0; j < length; j++) row[j] *= NearestMeanScale / norm;
        }
        return (weights, new float[classes]);
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public uint Label { get; set; }
        public float Weight { get; set; }
    }
}
