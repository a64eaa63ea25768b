using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// The one path from host pixels to a per-image network output: images <c>[count, C, H, W]</c> go to the device in
/// batches (each in its own dispose scope, without gradients) and the outputs come back as one row-major array.
/// Scoring, feature extraction and the Fréchet distance all read images this way.
/// </summary>
internal static class ImageBatches
{
    public const int DefaultBatchSize = 512;

    /// <summary>Applies <paramref name="map"/> to every batch; returns <c>[count, outputLength]</c> floats, row-major.</summary>
    /// <param name="pixels">The images, <c>[count, C, H, W]</c> floats.</param>
    /// <param name="count">How many images.</param>
    /// <param name="shape">Shape of one image.</param>
    /// <param name="device">Where <paramref name="map"/> runs.</param>
    /// <param name="map">Per-batch network output; its rows are the result's rows.</param>
    /// <param name="batchSize">Images per batch.</param>
    /// <param name="afterBatch">Called with the number of images done after each batch (progress, cancellation).</param>
    public static float[] Map(ReadOnlySpan<float> pixels, int count, ImageShape shape, Device device, Func<Tensor, Tensor> map, int batchSize = DefaultBatchSize,
        Action<int>? afterBatch = null)
    {
        int size = shape.Size;
        if (pixels.Length != (long)count * size)
            throw new ArgumentException($"{pixels.Length} pixel values do not make {count} images of shape {shape}.", nameof(pixels));
        float[] result = Array.Empty<float>();
        using var _ = no_grad();
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            using var scope = NewDisposeScope();
            var batch = tensor(pixels.Slice(start * size, n * size).ToArray(), new long[] { n, shape.Channels, shape.Height, shape.Width }).to(device);
            var output = map(batch).to(ScalarType.Float32).cpu();
            int length = (int)(output.numel() / n);
            if (start == 0) result = new float[(long)count * length];
            output.data<float>().CopyTo(result.AsSpan(start * length, n * length));
            afterBatch?.Invoke(start + n);
        }
        return result;
    }

    /// <summary>
    /// Applies <paramref name="map"/> to <paramref name="rows"/> in slices along the first dimension, each in its own
    /// dispose scope, so that the intermediate tensors of one slice are freed before the next; returns the outputs
    /// joined along the first dimension.
    /// </summary>
    /// <param name="rows">The input, already on its device.</param>
    /// <param name="batchSize">Rows per slice.</param>
    /// <param name="map">What each slice becomes; its output's first dimension is the slice's rows.</param>
    /// <param name="cancel">Checked before each slice.</param>
    public static Tensor MapSlices(Tensor rows, int batchSize, Func<Tensor, Tensor> map, CancellationToken cancel = default)
    {
        var parts = new List<Tensor>();
        try
        {
            for (long start = 0; start < rows.shape[0]; start += batchSize)
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                parts.Add(map(rows.narrow(0, start, Math.Min(batchSize, rows.shape[0] - start))).MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally
        {
            foreach (var part in parts) part.Dispose();
        }
    }
}
