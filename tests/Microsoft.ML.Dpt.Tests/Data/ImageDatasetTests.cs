using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Data;

public class ImageDatasetTests
{
    [Fact]
    public void TheDataViewHasAShapedImageVectorAndAKeyLabelWithClassNames()
    {
        var ml = new MLContext(seed: 1);
        var data = new ImageDataset(new float[] { 0f, 0.5f, 1f, 0.25f, 0.75f, 1f }, new[] { 1, -1 }, new ImageShape(1, 1, 3), new[] { "a", "b" });
        var view = data.ToDataView(ml);

        var image = Assert.IsType<VectorDataViewType>(view.Schema["Image"].Type);
        Assert.Equal(new[] { 1, 1, 3 }, image.Dimensions.ToArray());
        var label = Assert.IsType<KeyDataViewType>(view.Schema["Label"].Type);
        Assert.Equal(2UL, label.Count);
        VBuffer<ReadOnlyMemory<char>> names = default;
        view.Schema["Label"].GetKeyValues(ref names);
        Assert.Equal(new[] { "a", "b" }, names.DenseValues().Select(n => n.ToString()));

        using var cursor = view.GetRowCursor(view.Schema);
        var getLabel = cursor.GetGetter<uint>(view.Schema["Label"]);
        var getImage = cursor.GetGetter<VBuffer<float>>(view.Schema["Image"]);
        uint key = 0;
        VBuffer<float> pixels = default;
        Assert.True(cursor.MoveNext());
        getLabel(ref key);
        getImage(ref pixels);
        Assert.Equal(2u, key);   // class 1 -> key 2 (keys are one-based)
        Assert.Equal(new[] { 0f, 0.5f, 1f }, pixels.DenseValues());
        Assert.True(cursor.MoveNext());
        getLabel(ref key);
        Assert.Equal(0u, key);   // unlabeled -> missing key
    }

    [Fact]
    public void InconsistentArraysAreRejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new ImageDataset(new float[5], new[] { 0, 1 }, new ImageShape(1, 1, 3), new[] { "a", "b" }));
        Assert.Contains("5 pixel values do not make 2 images of shape 1x1x3", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageDataset(new float[6], new[] { 0, 2 }, new ImageShape(1, 1, 3), new[] { "a", "b" }));
    }
}
