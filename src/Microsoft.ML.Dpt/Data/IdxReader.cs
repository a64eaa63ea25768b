using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.Dpt.Data;

/// <summary>
/// Reads the MNIST/IDX format (unsigned-byte arrays with a big-endian header), gzip-compressed or raw.
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByteType = 0x08;

    /// <summary>The contents of one IDX file: its dimensions and its bytes in row-major order.</summary>
    public sealed record IdxArray(int[] Dimensions, byte[] Data);

    /// <summary>Reads an IDX file of unsigned bytes.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is truncated or not an unsigned-byte IDX file; the message names the file.</exception>
    public static IdxArray Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        byte[] bytes;
        try
        {
            bytes = ReadAllBytesMaybeGzip(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"IDX file '{path}' is not a valid gzip stream: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Reads an image file (3 dimensions: count, height, width) and a label file (1 dimension) of equal count.</summary>
    public static (IdxArray Images, IdxArray Labels) ReadImagesAndLabels(string imagesPath, string labelsPath)
    {
        var images = Read(imagesPath);
        if (images.Dimensions.Length != 3)
            throw new InvalidDataException($"IDX image file '{imagesPath}' has {images.Dimensions.Length} dimensions; expected 3 (count, height, width).");
        var labels = Read(labelsPath);
        if (labels.Dimensions.Length != 1)
            throw new InvalidDataException($"IDX label file '{labelsPath}' has {labels.Dimensions.Length} dimensions; expected 1 (count).");
        if (labels.Dimensions[0] != images.Dimensions[0])
            throw new InvalidDataException($"IDX label file '{labelsPath}' has {labels.Dimensions[0]} labels but image file '{imagesPath}' has {images.Dimensions[0]} images.");
        return (images, labels);
    }

    internal static IdxArray Parse(byte[] bytes, string path)
    {
        if (bytes.Length < 4)
            throw new InvalidDataException($"IDX file '{path}' is truncated: {bytes.Length} bytes, shorter than the 4-byte header.");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new InvalidDataException($"IDX file '{path}' does not start with the IDX magic number (two zero bytes); found 0x{bytes[0]:x2}{bytes[1]:x2}.");
        if (bytes[2] != UnsignedByteType)
            throw new InvalidDataException($"IDX file '{path}' holds element type 0x{bytes[2]:x2}; only unsigned bytes (0x08) are supported.");
        int rank = bytes[3];
        if (rank < 1 || rank > 4)
            throw new InvalidDataException($"IDX file '{path}' declares {rank} dimensions; expected 1 to 4.");
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new InvalidDataException($"IDX file '{path}' is truncated inside its header ({bytes.Length} of {headerLength} bytes).");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (d == 0 || d > int.MaxValue)
                throw new InvalidDataException($"IDX file '{path}' declares dimension {i} as {d}; expected a positive size.");
            dims[i] = (int)d;
            count *= d;
        }
        long available = bytes.Length - headerLength;
        if (available < count)
            throw new InvalidDataException($"IDX file '{path}' is truncated: its header declares {count} values ({string.Join("x", dims)}) but only {available} follow.");
        if (available > count)
            throw new InvalidDataException($"IDX file '{path}' has {available - count} bytes after the {count} values its header declares.");
        return new IdxArray(dims, bytes.AsSpan(headerLength).ToArray());
    }

    private static byte[] ReadAllBytesMaybeGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        int read = file.Read(magic);
        file.Position = 0;
        bool gzip = read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        using var output = new MemoryStream();
        if (gzip)
        {
            using var unzip = new GZipStream(file, CompressionMode.Decompress);
            unzip.CopyTo(output);
        }
        else
        {
            file.CopyTo(output);
        }
        return output.ToArray();
    }
}
