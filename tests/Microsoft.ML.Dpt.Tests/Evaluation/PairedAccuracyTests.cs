using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Evaluation;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Evaluation;

public class PairedAccuracyTests
{
    [Fact]
    public void CountsTheRowsEachClassifierAloneGetsRight()
    {
        int[] labels = { 0, 1, 2, 0, 1, 2, 0, 1 };
        int[] first = { 0, 1, 2, 1, 1, 0, 2, 2 };    // right on rows 0, 1, 2, 4
        int[] second = { 0, 1, 0, 0, 1, 2, 0, 2 };   // right on rows 0, 1, 3, 4, 5, 6

        var result = PairedAccuracy.Compare(labels, first, second);

        Assert.Equal(new PairedAccuracyResult(8, 3, 1, 3), result);
        Assert.Equal(4 / 8.0, result.FirstAccuracy, 12);
        Assert.Equal(6 / 8.0, result.SecondAccuracy, 12);
        Assert.Equal(2 / Math.Sqrt(4), result.Z, 12);
        // Binomial(4, ½): P(X ≤ 1) = 5/16, two-sided 10/16.
        Assert.Equal(10 / 16.0, result.PValue, 12);
    }

    [Theory]
    [InlineData(0, 5, 2 / 32.0)]        // all five discordant rows favour one side: 2 · (½)^5
    [InlineData(5, 0, 2 / 32.0)]        // symmetric in the two classifiers
    [InlineData(7, 7, 1.0)]             // an even split is no evidence
    [InlineData(0, 0, 1.0)]             // no row tells them apart
    [InlineData(157, 186, 0.130)]       // stage 1 against stage 3, four labels, seed 1 (docs/results.md): z +1.57
    [InlineData(284, 155, 7.62e-10)]    // the same before the pass-rate gate: z −6.16
    public void TheExactPValueIsTheTwoSidedBinomialTail(int onlyFirst, int onlySecond, double expected)
    {
        var result = new PairedAccuracyResult(10_000, 0, onlyFirst, onlySecond);

        Assert.Equal(expected, result.PValue, expected * 0.02 + 1e-12);
        Assert.Equal(onlyFirst + onlySecond == 0 ? 0 : (onlySecond - onlyFirst) / Math.Sqrt(onlyFirst + onlySecond), result.Z, 12);
    }

    [Fact]
    public void ScoredViewsAreComparedByTheArgmaxOfTheirScores()
    {
        var ml = new MLContext(seed: 1);
        var first = View(ml, new[] { (0, new[] { 0.9f, 0.1f, 0f }), (1, new[] { 0.2f, 0.7f, 0.1f }), (2, new[] { 0.5f, 0f, 0.5f }) });
        var second = View(ml, new[] { (0, new[] { 0.1f, 0.8f, 0.1f }), (1, new[] { 0.1f, 0.6f, 0.3f }), (2, new[] { 0.1f, 0.2f, 0.7f }) });

        var result = PairedAccuracy.Compare(first, second);

        // Row 0: only the first is right; row 1: both; row 2: only the second (the first's tie goes to class 0).
        Assert.Equal(new PairedAccuracyResult(3, 1, 1, 1), result);
        Assert.Equal(2 / 3.0, result.SecondAccuracy, 12);
    }

    [Fact]
    public void ViewsThatDoNotScoreTheSameRowsOrLackAColumnAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var threeRows = View(ml, new[] { (0, new[] { 1f, 0f, 0f }), (1, new[] { 0f, 1f, 0f }), (2, new[] { 0f, 0f, 1f }) });
        var twoRows = View(ml, new[] { (0, new[] { 1f, 0f, 0f }), (1, new[] { 0f, 1f, 0f }) });
        var otherLabels = View(ml, new[] { (0, new[] { 1f, 0f, 0f }), (2, new[] { 0f, 1f, 0f }), (2, new[] { 0f, 0f, 1f }) });
        var unlabeled = View(ml, new[] { (0, new[] { 1f, 0f, 0f }), (-1, new[] { 0f, 1f, 0f }), (2, new[] { 0f, 0f, 1f }) });
        var nanScore = View(ml, new[] { (0, new[] { 1f, 0f, 0f }), (1, new[] { float.NaN, 1f, 0f }), (2, new[] { 0f, 0f, 1f }) });

        Assert.Contains("3 rows and the second 2", Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(threeRows, twoRows)).Message);
        Assert.Contains("row 1 has label 1 in the first and 2 in the second", Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(threeRows, otherLabels)).Message);
        Assert.Contains("Row 1 of the second view has no label in 'Label'", Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(threeRows, unlabeled)).Message);
        Assert.Contains("Row 1 of the second view has a NaN in 'Score'", Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(threeRows, nanScore)).Message);
        Assert.Contains("Score column 'Probabilities' was not found in the first view",
            Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(threeRows, threeRows, scoreColumnName: "Probabilities")).Message);
        Assert.Contains("Label column 'Class' was not found", Assert.ThrowsAny<ArgumentException>(() => PairedAccuracy.Compare(threeRows, threeRows, labelColumnName: "Class")).Message);
        Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(new[] { 0, 1 }, new[] { 0 }, new[] { 0, 1 }));
        Assert.Throws<ArgumentException>(() => PairedAccuracy.Compare(Array.Empty<int>(), Array.Empty<int>(), Array.Empty<int>()));
    }

    /// <summary>A scored view of rows of class index (−1: no label) and scores.</summary>
    private static IDataView View(MLContext ml, (int Label, float[] Score)[] rows) =>
        // LoadFromEnumerable stores a [KeyType] value v as the key v + 1 and a value past the count as missing (0).
        ml.Data.LoadFromEnumerable(rows.Select(r => new ScoredRow { Label = r.Label < 0 ? 3u : (uint)r.Label, Score = r.Score }));

    private sealed class ScoredRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(3)]
        public float[] Score { get; set; } = Array.Empty<float>();
    }
}
