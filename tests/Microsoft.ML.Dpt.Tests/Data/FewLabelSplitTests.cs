using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Data;

public class FewLabelSplitTests
{
    [Fact]
    public void KeepsExactlyKLabelsPerClassAndHidesTheRest()
    {
        var train = TestData.FashionMnistSubset.Train;
        var split = FewLabelSplit.Apply(train, 4, seed: 7);

        Assert.Equal(train.Count, split.Count);
        Assert.Equal(40, split.Labels.Count(l => l >= 0));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(4, split.Labels.Count(l => l == c)));
        Assert.All(Enumerable.Range(0, train.Count).Where(i => split.Labels[i] >= 0), i => Assert.Equal(train.Labels[i], split.Labels[i]));
        Assert.Same(train.Pixels, split.Pixels);
    }

    [Fact]
    public void TheSameSeedGivesTheSameSplitAndAnotherSeedAnother()
    {
        var labels = TestData.FashionMnistSubset.Train.Labels;
        var a = FewLabelSplit.ChooseLabeledRows(labels, 10, 4, seed: 1);
        var b = FewLabelSplit.ChooseLabeledRows(labels, 10, 4, seed: 1);
        var c = FewLabelSplit.ChooseLabeledRows(labels, 10, 4, seed: 2);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void TooFewRowsInAClassIsAnError()
    {
        var labels = new[] { 0, 0, 0, 1 };
        var error = Assert.Throws<ArgumentException>(() => FewLabelSplit.ChooseLabeledRows(labels, 2, 2, seed: 1));
        Assert.Contains("Class 1 has 1 labeled rows; 2 per class", error.Message);
    }

    [Fact]
    public void TheDataViewSplitMarksOtherRowsAsMissingKeys()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.SmallTrain(20).ToDataView(ml);
        var split = ml.Dpt().Data.KeepLabelsPerClass(data, 3, seed: 5);

        var original = ReadLabels(data);
        var masked = ReadLabels(split);
        Assert.Equal(original.Length, masked.Length);
        Assert.Equal(30, masked.Count(k => k != 0));
        Assert.All(Enumerable.Range(1, 10), key => Assert.Equal(3, masked.Count(k => k == key)));
        Assert.All(Enumerable.Range(0, masked.Length).Where(i => masked[i] != 0), i => Assert.Equal(original[i], masked[i]));
        Assert.Equal(data.Schema["Label"].Type, split.Schema["Label"].Type);
    }

    private static uint[] ReadLabels(IDataView view)
    {
        var labels = new List<uint>();
        using var cursor = view.GetRowCursor(new[] { view.Schema["Label"] });
        var get = cursor.GetGetter<uint>(view.Schema["Label"]);
        uint value = 0;
        while (cursor.MoveNext())
        {
            get(ref value);
            labels.Add(value);
        }
        return labels.ToArray();
    }
}
