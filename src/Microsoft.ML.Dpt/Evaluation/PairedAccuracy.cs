using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;

namespace Microsoft.ML.Dpt.Evaluation;

/// <summary>
/// Compares two classifiers on the same test rows, row by row (McNemar's test): only the rows that one classifier
/// gets right and the other gets wrong tell them apart, so a difference of accuracy that two separate confidence
/// intervals cannot resolve may still be clear, or the other way round. This is how to tell whether DPT's stage 3
/// beats the stage 1 it started from on a given test set.
/// </summary>
public static class PairedAccuracy
{
    /// <summary>
    /// Compares two scored views of the same rows in the same order (for example
    /// <c>stage1.Transform(test)</c> and <c>stage3.Transform(test)</c>). A row's prediction is the argmax of its score
    /// vector, as in <c>mlContext.MulticlassClassification.Evaluate</c>.
    /// </summary>
    /// <param name="first">The first classifier's output: a key-typed label column and a score vector per row.</param>
    /// <param name="second">The second classifier's output over the same rows, in the same order.</param>
    /// <param name="labelColumnName">The true class: a key column over UInt32, with a label on every row.</param>
    /// <param name="scoreColumnName">A Single vector with one score per class.</param>
    /// <exception cref="ArgumentException">A column is missing or of the wrong type, a row has no label or a NaN score,
    /// or the two views differ in row count or in a row's label.</exception>
    public static PairedAccuracyResult Compare(IDataView first, IDataView second, string labelColumnName = DefaultColumnNames.Label,
        string scoreColumnName = DefaultColumnNames.Score)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        var (labels, firstPredictions) = Read(first, nameof(first), labelColumnName, scoreColumnName);
        var (secondLabels, secondPredictions) = Read(second, nameof(second), labelColumnName, scoreColumnName);
        if (secondLabels.Length != labels.Length)
            throw new ArgumentException($"The two views must score the same rows; the first has {labels.Length} rows and the second {secondLabels.Length}.", nameof(second));
        for (int row = 0; row < labels.Length; row++)
            if (labels[row] != secondLabels[row])
                throw new ArgumentException($"The two views must score the same rows in the same order; row {row} has label {labels[row]} in the first and {secondLabels[row]} in the second ('{labelColumnName}').", nameof(second));
        return Compare(labels, firstPredictions, secondPredictions);
    }

    /// <summary>Compares two lists of predicted classes with the true classes of the same rows.</summary>
    /// <exception cref="ArgumentException">The three lists differ in length or are empty.</exception>
    public static PairedAccuracyResult Compare(IReadOnlyList<int> labels, IReadOnlyList<int> firstPredictions, IReadOnlyList<int> secondPredictions)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(firstPredictions);
        ArgumentNullException.ThrowIfNull(secondPredictions);
        if (labels.Count == 0) throw new ArgumentException("A paired comparison needs at least one row.", nameof(labels));
        if (firstPredictions.Count != labels.Count || secondPredictions.Count != labels.Count)
            throw new ArgumentException($"Every row needs a label and both predictions; got {labels.Count} labels, {firstPredictions.Count} first and {secondPredictions.Count} second predictions.");
        int both = 0, onlyFirst = 0, onlySecond = 0;
        for (int row = 0; row < labels.Count; row++)
        {
            bool firstRight = firstPredictions[row] == labels[row], secondRight = secondPredictions[row] == labels[row];
            if (firstRight && secondRight) both++;
            else if (firstRight) onlyFirst++;
            else if (secondRight) onlySecond++;
        }
        return new PairedAccuracyResult(labels.Count, both, onlyFirst, onlySecond);
    }

    private static (int[] Labels, int[] Predictions) Read(IDataView data, string parameter, string labelColumnName, string scoreColumnName)
    {
        var label = LabelColumn.Bind(data.Schema, labelColumnName);
        var score = data.Schema.GetColumnOrNull(scoreColumnName)
            ?? throw new ArgumentException($"Score column '{scoreColumnName}' was not found in the {parameter} view (columns: {string.Join(", ", data.Schema.Select(c => c.Name))}).", parameter);
        if (score.Type is not VectorDataViewType { ItemType: NumberDataViewType number, Size: var size } || number.RawType != typeof(float) || size != label.ClassCount)
            throw new ArgumentException($"Score column '{scoreColumnName}' of the {parameter} view has type {score.Type}; expected a vector of {label.ClassCount} Single values, one per class of '{labelColumnName}'.", parameter);

        var labels = new List<int>();
        var predictions = new List<int>();
        using var cursor = data.GetRowCursor(new[] { data.Schema[labelColumnName], score });
        var getLabel = cursor.GetGetter<uint>(data.Schema[labelColumnName]);
        var getScore = cursor.GetGetter<VBuffer<float>>(score);
        uint key = 0;
        var scores = default(VBuffer<float>);
        while (cursor.MoveNext())
        {
            getLabel(ref key);
            getScore(ref scores);
            int row = labels.Count;
            if (key == 0)
                throw new ArgumentException($"Row {row} of the {parameter} view has no label in '{labelColumnName}'; a paired comparison needs every row's true class.", parameter);
            var values = scores.DenseValues().ToArray();
            if (values.Any(float.IsNaN))
                throw new ArgumentException($"Row {row} of the {parameter} view has a NaN in '{scoreColumnName}'.", parameter);
            labels.Add((int)key - 1);
            predictions.Add(Array.IndexOf(values, values.Max()));
        }
        return (labels.ToArray(), predictions.ToArray());
    }
}

/// <summary>
/// What <see cref="PairedAccuracy.Compare(IReadOnlyList{int}, IReadOnlyList{int}, IReadOnlyList{int})"/> counted:
/// the rows both classifiers get right, and those only one of them gets right.
/// </summary>
/// <param name="Count">Rows compared.</param>
/// <param name="BothRight">Rows both classifiers get right.</param>
/// <param name="OnlyFirstRight">Rows only the first classifier gets right.</param>
/// <param name="OnlySecondRight">Rows only the second classifier gets right.</param>
public sealed record PairedAccuracyResult(int Count, int BothRight, int OnlyFirstRight, int OnlySecondRight)
{
    /// <summary>The first classifier's accuracy.</summary>
    public double FirstAccuracy => (BothRight + OnlyFirstRight) / (double)Count;

    /// <summary>The second classifier's accuracy.</summary>
    public double SecondAccuracy => (BothRight + OnlySecondRight) / (double)Count;

    /// <summary>
    /// McNemar's statistic as a signed z: (only second − only first) / √(only second + only first); positive when
    /// the second classifier is better, 0 when no row tells them apart. |z| above about 2 is a difference the rows resolve.
    /// </summary>
    public double Z
    {
        get
        {
            int discordant = OnlyFirstRight + OnlySecondRight;
            return discordant == 0 ? 0 : (OnlySecondRight - OnlyFirstRight) / Math.Sqrt(discordant);
        }
    }

    /// <summary>
    /// Exact two-sided p-value of McNemar's test: the chance, if both classifiers were equally good, that the
    /// discordant rows would split at least this unevenly (binomial with p = ½). 1 when no row tells them apart.
    /// </summary>
    public double PValue
    {
        get
        {
            int discordant = OnlyFirstRight + OnlySecondRight, fewer = Math.Min(OnlyFirstRight, OnlySecondRight);
            // P(X ≤ fewer) for X ~ Binomial(discordant, ½), summed term by term in log space: C(n, k+1) = C(n, k)(n − k)/(k + 1).
            double logTerm = -discordant * Math.Log(2), tail = 0;
            for (int k = 0; k <= fewer; k++)
            {
                tail += Math.Exp(logTerm);
                logTerm += Math.Log((discordant - k) / (double)(k + 1));
            }
            return Math.Min(1, 2 * tail);
        }
    }
}
