using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// Reads a folder of image files: one subfolder per class (its name is the class name) and, optionally, a
/// subfolder of unlabeled images. Only PNG, JPEG and BMP are decoded, and images above a pixel count are refused
/// before decoding.
/// </summary>
public sealed class ImageFolderSource
{
    /// <summary>Options for reading an image folder.</summary>
    public sealed class Options
    {
        /// <summary>Name of the subfolder of unlabeled images. Default: "unlabeled".</summary>
        public string UnlabeledFolderName { get; set; } = "unlabeled";
        /// <summary>Channels to produce: 1 (luma) or 3 (RGB). Default: 3.</summary>
        public int Channels { get; set; } = 3;
        /// <summary>Largest accepted width*height; a larger file is an error, found before decoding. Default: 4,194,304 (2048x2048).</summary>
        public long MaxPixelCount { get; set; } = 2048L * 2048L;
    }

    private static readonly string[] Extensions = { ".png", ".jpg", ".jpeg", ".bmp" };

    // Only the decoders we need: a smaller attack surface than ImageSharp's default set of formats.
    private static readonly Configuration DecoderConfiguration =
        new(new PngConfigurationModule(), new JpegConfigurationModule(), new BmpConfigurationModule());

    /// <summary>Reads every image under <paramref name="folder"/>. All images must have the same width and height.</summary>
    public static ImageDataset Read(string folder, Options? options = null)
    {
        options ??= new Options();
        if (options.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(options), $"Options.Channels is {options.Channels}; expected 1 or 3.");
        if (options.MaxPixelCount < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"Options.MaxPixelCount is {options.MaxPixelCount}; expected a positive count.");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");

        var classFolders = Directory.GetDirectories(folder)
            .Where(d => !string.Equals(Path.GetFileName(d), options.UnlabeledFolderName, StringComparison.Ordinal))
            .OrderBy(d => d, StringComparer.Ordinal).ToArray();
        if (classFolders.Length < 2)
            throw new ArgumentException($"Image folder '{folder}' has {classFolders.Length} class subfolders; expected at least 2 (one per class, plus optionally '{options.UnlabeledFolderName}').");

        var files = new List<(string Path, int Label)>();
        for (int c = 0; c < classFolders.Length; c++)
            files.AddRange(ImageFiles(classFolders[c]).Select(f => (f, c)));
        var unlabeled = Path.Combine(folder, options.UnlabeledFolderName);
        if (Directory.Exists(unlabeled))
            files.AddRange(ImageFiles(unlabeled).Select(f => (f, -1)));
        if (files.Count == 0) throw new ArgumentException($"Image folder '{folder}' has no PNG, JPEG or BMP files.");

        ImageShape? shape = null;
        var pixels = new List<float[]>();
        foreach (var (path, _) in files)
        {
            var image = Decode(path, options);
            shape ??= new ImageShape(options.Channels, image.Height, image.Width);
            if (image.Height != shape.Value.Height || image.Width != shape.Value.Width)
                throw new InvalidDataException($"Image '{path}' is {image.Width}x{image.Height}, but '{files[0].Path}' is {shape.Value.Width}x{shape.Value.Height}; all images must have one size.");
            pixels.Add(image.Pixels);
        }
        var all = new float[(long)pixels.Count * shape!.Value.Size];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(all, (long)i * shape.Value.Size);
        return new ImageDataset(all, files.Select(f => f.Label).ToArray(), shape.Value, classFolders.Select(d => Path.GetFileName(d)!).ToArray());
    }

    private static IEnumerable<string> ImageFiles(string folder) =>
        Directory.EnumerateFiles(folder)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => f, StringComparer.Ordinal);

    private static (int Width, int Height, float[] Pixels) Decode(string path, Options options)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var info = Image.Identify(DecoderConfiguration, stream)
                ?? throw new InvalidDataException($"Image '{path}' is not a PNG, JPEG or BMP file.");
            if ((long)info.Width * info.Height > options.MaxPixelCount)
                throw new InvalidDataException($"Image '{path}' has {info.Width}x{info.Height} pixels, more than Options.MaxPixelCount = {options.MaxPixelCount}.");
            stream.Position = 0;
            using var image = Image.Load<Rgb24>(DecoderConfiguration, stream);
            int plane = image.Width * image.Height;
            var pixels = new float[plane * options.Channels];
            image.ProcessPixelRows(rows =>
            {
                for (int y = 0; y < rows.Height; y++)
                {
                    var row = rows.GetRowSpan(y);
                    for (int x = 0; x < row.Length; x++)
                    {
                        int p = y * rows.Width + x;
                        float r = row[x].R / 255f, g = row[x].G / 255f, b = row[x].B / 255f;
                        if (options.Channels == 1)
                        {
                            pixels[p] = 0.299f * r + 0.587f * g + 0.114f * b;   // ITU-R BT.601 luma
                        }
                        else
                        {
                            pixels[p] = r;
                            pixels[plane + p] = g;
                            pixels[2 * plane + p] = b;
                        }
                    }
                }
            });
            return (image.Width, image.Height, pixels);
        }
        catch (UnknownImageFormatException e)
        {
            throw new InvalidDataException($"Image '{path}' is not a PNG, JPEG or BMP file: {e.Message}", e);
        }
        catch (InvalidImageContentException e)
        {
            throw new InvalidDataException($"Image '{path}' is damaged: {e.Message}", e);
        }
    }
}
