using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Data;

public class ImageFolderSourceTests
{
    private static void WritePng(string path, int width, int height, byte seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = new Rgb24((byte)(seed + 10 * x), (byte)(seed + 20 * y), (byte)(3 * seed));
        image.SaveAsPng(path);
    }

    private static TestData.TempFolder ThreeClassFolder()
    {
        var folder = TestData.NewFolder();
        WritePng(folder.File("cat/1.png"), 8, 6, 10);
        WritePng(folder.File("cat/2.png"), 8, 6, 20);
        WritePng(folder.File("dog/1.png"), 8, 6, 30);
        WritePng(folder.File("eel/1.png"), 8, 6, 40);
        WritePng(folder.File("unlabeled/u.png"), 8, 6, 50);
        File.WriteAllText(folder.File("dog/readme.txt"), "not an image, and not read");
        return folder;
    }

    [Fact]
    public void ReadsClassFoldersAndUnlabeledImages()
    {
        using var folder = ThreeClassFolder();
        var data = ImageFolderSource.Read(folder.Path);

        Assert.Equal(new[] { "cat", "dog", "eel" }, data.ClassNames);
        Assert.Equal(new[] { 0, 0, 1, 2, -1 }, data.Labels);
        Assert.Equal(new ImageShape(3, 6, 8), data.Shape);
        // Pixel (x=1, y=2) of cat/1.png: R = 10 + 10, G = 10 + 40, B = 30, planes in RGB order.
        int plane = 48, p = 2 * 8 + 1;
        Assert.Equal(20 / 255f, data.Pixels[p], 6);
        Assert.Equal(50 / 255f, data.Pixels[plane + p], 6);
        Assert.Equal(30 / 255f, data.Pixels[2 * plane + p], 6);
    }

    [Fact]
    public void RefusesImagesAboveThePixelLimitBeforeDecoding()
    {
        using var folder = ThreeClassFolder();
        var error = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Read(folder.Path, new ImageFolderSource.Options { MaxPixelCount = 47 }));
        Assert.Contains("8x6 pixels, more than Options.MaxPixelCount = 47", error.Message);
    }

    [Fact]
    public void RefusesFormatsOutsidePngJpegAndBmpAndDamagedFiles()
    {
        using var folder = ThreeClassFolder();
        using (var gif = new Image<Rgb24>(8, 6)) gif.SaveAsGif(folder.File("eel/animated.png"));   // a GIF behind a .png name
        var error = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Read(folder.Path));
        Assert.Contains("animated.png", error.Message);
        Assert.Contains("not a PNG, JPEG or BMP", error.Message);

        File.Delete(folder.File("eel/animated.png"));
        File.WriteAllBytes(folder.File("eel/broken.png"), File.ReadAllBytes(folder.File("eel/1.png"))[..40]);
        error = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Read(folder.Path));
        Assert.Contains("broken.png", error.Message);
    }

    [Fact]
    public void AllImagesMustHaveOneSize()
    {
        using var folder = ThreeClassFolder();
        WritePng(folder.File("dog/big.png"), 9, 6, 1);
        var error = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Read(folder.Path));
        Assert.Contains("big.png' is 9x6", error.Message);
    }

    [Fact]
    public void AnMLImageColumnFromLoadImagesReadsTheSamePixelsAsTheFolderReader()
    {
        using var folder = ThreeClassFolder();
        var ml = new MLContext(seed: 1);
        var files = new[] { "cat/1.png", "cat/2.png", "dog/1.png", "eel/1.png" };
        var rows = ml.Data.LoadFromEnumerable(files.Select(f => new FileRow { Path = f, Class = f.Split('/')[0] }));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(FileRow.Class))
            .Append(ml.Transforms.LoadImages("Image", folder.Path, nameof(FileRow.Path)));
        var view = pipeline.Fit(rows).Transform(rows);

        var labeler = ml.Dpt().PseudoLabeler(new PseudoLabeler.Options
        {
            Algorithm = SemiSupervisedAlgorithm.SupervisedOnly, NumberOfSteps = 2, BatchSize = 2, NetworkWidth = 2, Device = Microsoft.ML.Dpt.Runtime.DptDevice.Cpu,
        });
        using var model = labeler.Fit(view);
        Assert.Equal(new ImageShape(3, 6, 8), model.Classifier.Shape);

        // The same images through both readers give the same pixels, so both sources feed the model alike.
        var fromFolder = ImageFolderSource.Read(folder.Path);
        var column = ImageColumn.Bind(view.Schema, "Image", model.Classifier.Shape);
        Assert.Equal(fromFolder.Pixels.AsSpan(0, 4 * 144).ToArray(), column.ReadAll(view));

        var scored = model.Transform(view);
        Assert.Equal(4, scored.GetColumn<uint>("PseudoLabel").Count());
    }

    private sealed class FileRow
    {
        public string Path { get; set; } = "";
        public string Class { get; set; } = "";
    }
}
