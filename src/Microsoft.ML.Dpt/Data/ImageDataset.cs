using Microsoft.ML.Data;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// Images and optional labels held in memory: the form in which data enters the trainers and leaves the readers.
/// </summary>
/// <remarks>Pixels are row-major <c>[N, C, H, W]</c> in [0, 1]; a label of -1 means unlabeled.</remarks>
public sealed class ImageDataset
{
    /// <summary>Creates a data set, checking that the arrays agree with the shape.</summary>
    public ImageDataset(float[] pixels, int[] labels, ImageShape shape, IReadOnlyList<string> classNames)
    {
        if (pixels.Length != (long)labels.Length * shape.Size)
            throw new ArgumentException($"{pixels.Length} pixel values do not make {labels.Length} images of shape {shape}.", nameof(pixels));
        foreach (var label in labels)
            if (label < -1 || label >= classNames.Count)
                throw new ArgumentOutOfRangeException(nameof(labels), $"Label {label} is outside [-1, {classNames.Count - 1}] for {classNames.Count} classes.");
        Pixels = pixels;
        Labels = labels;
        Shape = shape;
        ClassNames = classNames;
    }

    /// <summary>Pixel values, <c>[N, C, H, W]</c>, in [0, 1].</summary>
    public float[] Pixels { get; }
    /// <summary>Class index per image, or -1 for unlabeled.</summary>
    public int[] Labels { get; }
    /// <summary>Shape of one image.</summary>
    public ImageShape Shape { get; }
    /// <summary>Class names, in class-index order.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>All images as one tensor <c>[Count, C, H, W]</c> in [0, 1] on <paramref name="device"/> (training keeps them there).</summary>
    internal TorchSharp.torch.Tensor ToTensor(TorchSharp.torch.Device device) =>
        TorchSharp.torch.tensor(Pixels, new long[] { Count, Shape.Channels, Shape.Height, Shape.Width }).to(device);

    /// <summary>The images with the given indices, in that order.</summary>
    public ImageDataset Select(IReadOnlyList<int> indices)
    {
        int size = Shape.Size;
        var pixels = new float[(long)indices.Count * size];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Array.Copy(Pixels, (long)indices[i] * size, pixels, (long)i * size, size);
            labels[i] = Labels[indices[i]];
        }
        return new ImageDataset(pixels, labels, Shape, ClassNames);
    }

    /// <summary>The rows of <paramref name="first"/> then those of <paramref name="second"/> (same shape and classes).</summary>
    internal static ImageDataset Concatenate(ImageDataset first, ImageDataset second)
    {
        if (first.Shape != second.Shape || first.ClassNames.Count != second.ClassNames.Count)
            throw new ArgumentException($"Cannot add images of shape {second.Shape} with {second.ClassNames.Count} classes to images of shape {first.Shape} with {first.ClassNames.Count} classes.");
        return new ImageDataset(first.Pixels.Concat(second.Pixels).ToArray(), first.Labels.Concat(second.Labels).ToArray(), first.Shape, first.ClassNames);
    }

    /// <summary>
    /// This data set as an <see cref="IDataView"/>: an image column (float vector with dimensions C, H, W) and a
    /// key-typed label column whose key values are the class names (missing key = unlabeled).
    /// </summary>
    public IDataView ToDataView(MLContext mlContext, string imageColumnName = DefaultColumnNames.Image, string labelColumnName = DefaultColumnNames.Label)
    {
        var rows = Enumerable.Range(0, Count).Select(i => new ImageRow
        {
            Image = Pixels.AsSpan(i * Shape.Size, Shape.Size).ToArray(),
            // LoadFromEnumerable reads key fields as zero-based class indices and maps any value outside
            // [0, count) to the missing key, so an unlabeled row is written as the class count.
            Label = Labels[i] < 0 ? (uint)ClassNames.Count : (uint)Labels[i],
        });
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[nameof(ImageRow.Image)].ColumnName = imageColumnName;
        schema[nameof(ImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Shape.Channels, Shape.Height, Shape.Width);
        var label = schema[nameof(ImageRow.Label)];
        label.ColumnName = labelColumnName;
        label.ColumnType = new KeyDataViewType(typeof(uint), ClassNames.Count);
        label.AddAnnotation(KeyValues.Kind, KeyValues.FromNames(ClassNames), new VectorDataViewType(TextDataViewType.Instance, ClassNames.Count));
        return mlContext.Data.LoadFromEnumerable(rows, schema);
    }

    private sealed class ImageRow
    {
        public float[] Image { get; set; } = Array.Empty<float>();
        public uint Label { get; set; }
    }
}
