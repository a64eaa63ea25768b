using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// Keeps the label of the most confident rows of each class and marks the rest unlabeled (-1), so that a conditional
/// model learns each class from the rows stage 1 is surest of. On full Fashion-MNIST the most confident half of each
/// class of stage 1's pseudo-labels (4 labels per class, 76.8 % right in all) was 85.8 % right.
/// </summary>
internal static class ConfidentLabels
{
    /// <summary>
    /// A copy of <paramref name="labels"/> in which, per class, only the ceiling of <paramref name="fraction"/> of its
    /// rows with the highest <paramref name="confidence"/> keep their class (ties: the earlier row); rows already
    /// unlabeled stay so.
    /// </summary>
    public static int[] KeepMostConfident(int[] labels, float[] confidence, double fraction)
    {
        if (confidence.Length != labels.Length)
            throw new ArgumentException($"{confidence.Length} confidences for {labels.Length} labels.", nameof(confidence));
        var kept = Enumerable.Repeat(-1, labels.Length).ToArray();
        foreach (var rows in Enumerable.Range(0, labels.Length).Where(i => labels[i] >= 0).GroupBy(i => labels[i]))
            foreach (int i in rows.OrderByDescending(i => confidence[i]).ThenBy(i => i).Take((int)Math.Ceiling(fraction * rows.Count())))
                kept[i] = labels[i];
        return kept;
    }

    /// <summary>
    /// Reads <paramref name="label"/> (class indices, -1 for a missing key) and the scalar Single column
    /// <paramref name="confidenceColumnName"/> in one pass, checking that column's type and values.
    /// </summary>
    public static (int[] Labels, float[] Confidence) Read(IDataView data, LabelColumn label, string confidenceColumnName)
    {
        var column = data.Schema.GetColumnOrNull(confidenceColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(confidenceColumnName), $"Confidence column '{confidenceColumnName}' was not found in the input schema (columns: {string.Join(", ", data.Schema.Select(c => c.Name))}); ConditionedFraction below 1 ranks each class's rows by it (the PseudoLabeler writes one).");
        if (column.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(confidenceColumnName), $"Confidence column '{confidenceColumnName}' has type {column.Type}; expected a scalar Single.");
        var (labels, confidence) = label.ReadAllWith(data, column);
        int bad = Array.FindIndex(confidence, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new InvalidOperationException($"Confidence column '{confidenceColumnName}' holds {confidence[bad]} in row {bad}; expected finite numbers.");
        return (labels, confidence);
    }
}
