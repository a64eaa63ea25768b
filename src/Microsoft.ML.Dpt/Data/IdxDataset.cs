namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// A data set in the MNIST/IDX layout: <c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>, each optionally gzip-compressed (<c>.gz</c>).
/// </summary>
public static class IdxDataset
{
    /// <summary>The four file names, without the optional <c>.gz</c>.</summary>
    public static readonly IReadOnlyList<string> FileNames = new[]
    {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    };

    /// <summary>Whether all four files are in <paramref name="folder"/>.</summary>
    public static bool HasFiles(string folder) => FileNames.All(n => Find(folder, n) is not null);

    /// <summary>Reads one images/labels pair into an <see cref="ImageDataset"/> with pixels scaled to [0, 1].</summary>
    /// <param name="imagesPath">IDX file of unsigned bytes, dimensions (count, height, width).</param>
    /// <param name="labelsPath">IDX file of unsigned bytes, dimension (count), values below the class count.</param>
    /// <param name="classNames">Class names; <c>null</c> names classes "0".."max label".</param>
    public static ImageDataset Read(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        var (images, labels) = IdxReader.ReadImagesAndLabels(imagesPath, labelsPath);
        int max = labels.Data.Length == 0 ? 0 : labels.Data.Max();
        classNames ??= Enumerable.Range(0, max + 1).Select(i => i.ToString()).ToArray();
        if (max >= classNames.Count)
            throw new InvalidDataException($"IDX label file '{labelsPath}' has label {max}, but only {classNames.Count} classes are named.");
        var pixels = new float[images.Data.Length];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = images.Data[i] / 255f;
        var shape = new ImageShape(1, images.Dimensions[1], images.Dimensions[2]);
        return new ImageDataset(pixels, labels.Data.Select(b => (int)b).ToArray(), shape, classNames);
    }

    /// <summary>Reads the training and test splits from <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">One of the four files is missing; the message lists what was looked for.</exception>
    public static (ImageDataset Train, ImageDataset Test) Load(string folder, IReadOnlyList<string>? classNames = null)
    {
        string Path(string name) => Find(folder, name)
            ?? throw new FileNotFoundException($"Data folder '{folder}' has no '{name}' or '{name}.gz' (an MNIST/IDX data set needs {string.Join(", ", FileNames)}).");
        var train = Read(Path(FileNames[0]), Path(FileNames[1]), classNames);
        var test = Read(Path(FileNames[2]), Path(FileNames[3]), train.ClassNames);
        if (test.Shape != train.Shape)
            throw new InvalidDataException($"Data folder '{folder}': test images are {test.Shape} but training images are {train.Shape}.");
        return (train, test);
    }

    private static string? Find(string folder, string name) =>
        new[] { name, name + ".gz" }.Select(n => System.IO.Path.Combine(folder, n)).FirstOrDefault(File.Exists);
}
