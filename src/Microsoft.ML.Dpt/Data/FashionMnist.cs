namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// Fashion-MNIST (Zalando, MIT licence): 28x28 grayscale images of 10 clothing classes, in MNIST/IDX format.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the full set (60,000 train, 10,000 test).</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Folder of the small subset shipped with the repository, relative to the app's base folder.</summary>
    public const string EmbeddedSubsetFolder = "data/fashion-mnist-subset";

    /// <summary>The class names in label order.</summary>
    public static readonly IReadOnlyList<string> ClassNames = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>
    /// The folder to read: <paramref name="folder"/> when given, else the full Debian install when present,
    /// else the subset copied beside the app (<see cref="EmbeddedSubsetFolder"/>).
    /// </summary>
    public static string Locate(string? folder = null)
    {
        if (!string.IsNullOrEmpty(folder))
        {
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Data folder '{folder}' does not exist.");
            return folder;
        }
        if (Directory.Exists(DebianFolder) && IdxDataset.HasFiles(DebianFolder)) return DebianFolder;
        var embedded = Path.Combine(AppContext.BaseDirectory, EmbeddedSubsetFolder);
        if (Directory.Exists(embedded)) return embedded;
        throw new DirectoryNotFoundException($"Fashion-MNIST was not found: neither {DebianFolder} (apt-get install dataset-fashion-mnist) nor the embedded subset at {embedded}.");
    }

    /// <summary>Reads the training and test splits from <see cref="Locate"/>'s folder.</summary>
    public static (ImageDataset Train, ImageDataset Test) Load(string? folder = null) =>
        IdxDataset.Load(Locate(folder), ClassNames);
}
