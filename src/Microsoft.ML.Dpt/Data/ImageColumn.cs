using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// The one place where rows of an <see cref="IDataView"/> become pixel arrays: it validates an image column and
/// reads it, whether it is a float vector with dimensions (C, H, W) or an <see cref="MLImage"/>.
/// </summary>
internal sealed class ImageColumn
{
    private readonly bool _isMLImage;

    private ImageColumn(string name, ImageShape shape, bool isMLImage)
    {
        Name = name;
        Shape = shape;
        _isMLImage = isMLImage;
    }

    /// <summary>Column name.</summary>
    public string Name { get; }
    /// <summary>Shape of one image as read from the column.</summary>
    public ImageShape Shape { get; }

    /// <summary>
    /// Checks that <paramref name="schema"/> has a usable image column. A float vector must have a known size and
    /// either three dimensions (C, H, W) or a size equal to <paramref name="expected"/>'s. An <see cref="MLImage"/>
    /// column needs <paramref name="expected"/> (or <paramref name="mlImageChannels"/>) for its shape, since the
    /// schema does not carry one.
    /// </summary>
    public static ImageColumn Bind(DataViewSchema schema, string name, ImageShape? expected, int mlImageChannels = 3)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(name), $"Image column '{name}' was not found in the input schema (columns: {string.Join(", ", schema.Select(c => c.Name))}).");
        if (column.Type is ImageDataViewType image)
        {
            var shape = expected ?? (image.Height > 0 && image.Width > 0 ? new ImageShape(mlImageChannels, image.Height, image.Width) : (ImageShape?)null)
                ?? throw new ArgumentException($"Image column '{name}' holds MLImage values of unknown size; resize them first (mlContext.Transforms.ResizeImages).");
            return new ImageColumn(name, shape, isMLImage: true);
        }
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType } vector || vector.ItemType.RawType != typeof(float) || !vector.IsKnownSize)
            throw new ArgumentOutOfRangeException(nameof(name), $"Image column '{name}' has type {column.Type}; expected a known-size vector of Single (C*H*W values in [0, 1]) or an MLImage.");
        if (vector.Dimensions.Length == 3)
        {
            var shape = new ImageShape(vector.Dimensions[0], vector.Dimensions[1], vector.Dimensions[2]);
            if (expected is { } e && e != shape)
                throw new ArgumentOutOfRangeException(nameof(name), $"Image column '{name}' has shape {shape}; the model expects {e}.");
            return new ImageColumn(name, shape, isMLImage: false);
        }
        if (expected is { } exp && exp.Size == vector.Size)
            return new ImageColumn(name, exp, isMLImage: false);
        throw new ArgumentOutOfRangeException(nameof(name), $"Image column '{name}' is a vector of {vector.Size} values without (C, H, W) dimensions; give it dimensions (for example VectorType(1, 28, 28)) or set the image shape in the options.");
    }

    /// <summary>
    /// Binds the image column of training data. An MLImage column of unknown size takes its shape from the
    /// first image (every other image must match it when read).
    /// </summary>
    public static ImageColumn BindForTraining(IDataView data, string name, int mlImageChannels)
    {
        if (data.Schema.GetColumnOrNull(name) is { Type: ImageDataViewType { Height: <= 0 } } column)
        {
            using var cursor = data.GetRowCursor(new[] { column });
            var get = cursor.GetGetter<MLImage>(column);
            MLImage first = null!;   // ML.NET's getter contract: it assigns the value
            if (!cursor.MoveNext()) throw new ArgumentException("The training data has no rows.", nameof(data));
            get(ref first);
            if (first is null) throw new InvalidDataException($"Image column '{name}' has a missing image in its first row.");
            return new ImageColumn(name, new ImageShape(mlImageChannels, first.Height, first.Width), isMLImage: true);
        }
        return Bind(data.Schema, name, expected: null, mlImageChannels);
    }

    /// <summary>A getter that writes the current row's pixels into a span of <see cref="Shape"/>.Size values.</summary>
    public PixelGetter CreateGetter(DataViewRow row)
    {
        var column = row.Schema[Name];
        if (_isMLImage)
        {
            var getter = row.GetGetter<MLImage>(column);
            MLImage image = null!;
            return destination =>
            {
                getter(ref image);
                CopyPixels(image, destination);
            };
        }
        var vectorGetter = row.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        return destination =>
        {
            vectorGetter(ref buffer);
            buffer.CopyTo(destination);
            for (int i = 0; i < destination.Length; i++)
                if (!(destination[i] >= 0f && destination[i] <= 1f))   // also catches NaN
                    throw new InvalidDataException($"Image column '{Name}' has value {destination[i]} at index {i}; pixel values must be in [0, 1].");
        };
    }

    private void CopyPixels(MLImage? image, Span<float> destination)
    {
        if (image is null)
            throw new InvalidDataException($"Image column '{Name}' has a missing image.");
        if (image.Height != Shape.Height || image.Width != Shape.Width)
            throw new InvalidDataException($"Image column '{Name}' has a {image.Width}x{image.Height} image; the model expects {Shape.Width}x{Shape.Height}. Resize first (mlContext.Transforms.ResizeImages).");
        var pixels = image.Pixels;
        int planeSize = Shape.Height * Shape.Width;
        (int r, int g, int b) = image.PixelFormat switch
        {
            MLPixelFormat.Bgra32 => (2, 1, 0),
            MLPixelFormat.Rgba32 => (0, 1, 2),
            _ => throw new InvalidDataException($"Image column '{Name}' has pixel format {image.PixelFormat}; expected Bgra32 or Rgba32."),
        };
        for (int p = 0; p < planeSize; p++)
        {
            float red = pixels[4 * p + r] / 255f, green = pixels[4 * p + g] / 255f, blue = pixels[4 * p + b] / 255f;
            if (Shape.Channels == 1)
            {
                destination[p] = 0.299f * red + 0.587f * green + 0.114f * blue;   // ITU-R BT.601 luma
            }
            else
            {
                destination[p] = red;
                destination[planeSize + p] = green;
                destination[2 * planeSize + p] = blue;
            }
        }
    }

    /// <summary>Reads every row's pixels into one array, <c>[N, C, H, W]</c>.</summary>
    public float[] ReadAll(IDataView data, CancellationToken cancellation = default)
    {
        var pixels = new List<float[]>();
        using var cursor = data.GetRowCursor(new[] { data.Schema[Name] });
        var get = CreateGetter(cursor);
        while (cursor.MoveNext())
        {
            cancellation.ThrowIfCancellationRequested();
            var image = new float[Shape.Size];
            get(image);
            pixels.Add(image);
        }
        var all = new float[(long)pixels.Count * Shape.Size];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(all, (long)i * Shape.Size);
        return all;
    }
}

/// <summary>Writes the current row's pixels into <paramref name="destination"/>.</summary>
internal delegate void PixelGetter(Span<float> destination);
