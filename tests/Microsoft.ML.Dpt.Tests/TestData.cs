using Microsoft.ML.Dpt.Data;

namespace Microsoft.ML.Dpt.Tests;

/// <summary>Data the tests share: the embedded Fashion-MNIST subset and small synthetic sets.</summary>
internal static class TestData
{
    private static readonly Lazy<(ImageDataset Train, ImageDataset Test)> Subset =
        new(() => IdxDataset.Load(Path.Combine(AppContext.BaseDirectory, FashionMnist.EmbeddedSubsetFolder), FashionMnist.ClassNames));

    /// <summary>The embedded subset: 6,000 training and 2,000 test images, 10 classes.</summary>
    public static (ImageDataset Train, ImageDataset Test) FashionMnistSubset => Subset.Value;

    /// <summary>The first <paramref name="perClass"/> images of each class of the subset's training split.</summary>
    public static ImageDataset SmallTrain(int perClass)
    {
        var train = FashionMnistSubset.Train;
        var rows = Enumerable.Range(0, 10).SelectMany(c => Enumerable.Range(0, train.Count).Where(i => train.Labels[i] == c).Take(perClass)).ToArray();
        return train.Select(rows);
    }

    /// <summary>A fresh temporary folder, deleted with the returned handle.</summary>
    public static TempFolder NewFolder() => new();

    internal sealed class TempFolder : IDisposable
    {
        public TempFolder()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dpt-tests-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
