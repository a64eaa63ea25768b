using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Microsoft.ML.Dpt.Data;

/// <summary>Writes a batch of images [N, C, H, W] in [0, 1] as one PNG grid (1-pixel gaps; a single image has no border).</summary>
public static class ImageGrid
{
    /// <summary>Saves <paramref name="count"/> images as a grid of <paramref name="columns"/> columns.</summary>
    public static void Save(string path, float[] pixels, int count, ImageShape shape, int columns = 10)
    {
        if (pixels.Length != (long)count * shape.Size)
            throw new ArgumentException($"{pixels.Length} pixel values do not make {count} images of shape {shape}.", nameof(pixels));
        if (shape.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(shape), $"A PNG grid needs 1 or 3 channels; got {shape.Channels}.");
        columns = Math.Max(1, Math.Min(columns, Math.Max(count, 1)));
        int rows = Math.Max(1, (count + columns - 1) / columns);
        int gap = count == 1 ? 0 : 1;
        int cellW = shape.Width + gap, cellH = shape.Height + gap, plane = shape.Height * shape.Width;
        using var image = new Image<Rgb24>(columns * cellW + gap, rows * cellH + gap, new Rgb24(255, 255, 255));
        byte Byte(float v) => (byte)Math.Round(Math.Clamp(v, 0f, 1f) * 255f);   // display only: the data are not changed
        for (int i = 0; i < count; i++)
        {
            int ox = gap + i % columns * cellW, oy = gap + i / columns * cellH, offset = i * shape.Size;
            for (int y = 0; y < shape.Height; y++)
                for (int x = 0; x < shape.Width; x++)
                {
                    int p = offset + y * shape.Width + x;
                    image[ox + x, oy + y] = shape.Channels == 1
                        ? new Rgb24(Byte(pixels[p]), Byte(pixels[p]), Byte(pixels[p]))
                        : new Rgb24(Byte(pixels[p]), Byte(pixels[p + plane]), Byte(pixels[p + 2 * plane]));
                }
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        image.SaveAsPng(path);
    }
}
