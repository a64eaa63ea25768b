using System.IO.Compression;
using Microsoft.ML.Dpt.Data;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Data;

public class IdxReaderTests
{
    private static byte[] Idx(byte type, int[] dims, byte[] data)
    {
        var header = new List<byte> { 0, 0, type, (byte)dims.Length };
        foreach (var d in dims) header.AddRange(BitConverter.GetBytes(d).Reverse());
        return header.Concat(data).ToArray();
    }

    private static void WriteGzip(string path, byte[] bytes)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(bytes);
    }

    [Fact]
    public void ReadsRawAndGzipFilesAlike()
    {
        using var folder = TestData.NewFolder();
        var bytes = Idx(0x08, new[] { 2, 2, 3 }, Enumerable.Range(0, 12).Select(i => (byte)(i * 20)).ToArray());
        File.WriteAllBytes(folder.File("raw"), bytes);
        WriteGzip(folder.File("zipped.gz"), bytes);

        var raw = IdxReader.Read(folder.File("raw"));
        var zipped = IdxReader.Read(folder.File("zipped.gz"));

        Assert.Equal(new[] { 2, 2, 3 }, raw.Dimensions);
        Assert.Equal(raw.Data, zipped.Data);
        Assert.Equal(220, raw.Data[11]);
    }

    [Theory]
    [InlineData("truncated", "truncated: its header declares 12 values")]
    [InlineData("magic", "does not start with the IDX magic number")]
    [InlineData("type", "only unsigned bytes")]
    [InlineData("trailing", "bytes after the 12 values")]
    [InlineData("header", "truncated inside its header")]
    public void MalformedFilesNameTheFileAndTheProblem(string defect, string expected)
    {
        using var folder = TestData.NewFolder();
        var good = Idx(0x08, new[] { 2, 2, 3 }, new byte[12]);
        var bytes = defect switch
        {
            "truncated" => good[..^5],
            "magic" => new byte[] { 1, 2 }.Concat(good[2..]).ToArray(),
            "type" => Idx(0x0D, new[] { 2, 2, 3 }, new byte[48]),
            "trailing" => good.Concat(new byte[3]).ToArray(),
            _ => good[..9],
        };
        var path = folder.File(defect + ".idx");
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void ImageAndLabelCountsMustAgree()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder.File("images"), Idx(0x08, new[] { 3, 2, 2 }, new byte[12]));
        File.WriteAllBytes(folder.File("labels"), Idx(0x08, new[] { 2 }, new byte[] { 0, 1 }));

        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Read(folder.File("images"), folder.File("labels")));
        Assert.Contains("has 2 labels but image file", error.Message);
    }

    [Fact]
    public void AMissingFileInADataFolderIsNamed()
    {
        using var folder = TestData.NewFolder();
        var error = Assert.Throws<FileNotFoundException>(() => IdxDataset.Load(folder.Path));
        Assert.Contains("train-images-idx3-ubyte", error.Message);
        Assert.Contains(folder.Path, error.Message);
    }

    [Fact]
    public void TheEmbeddedSubsetIsBalancedFashionMnist()
    {
        var (train, test) = TestData.FashionMnistSubset;
        Assert.Equal(6000, train.Count);
        Assert.Equal(2000, test.Count);
        Assert.Equal(new ImageShape(1, 28, 28), train.Shape);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(600, train.Labels.Count(l => l == c)));
        Assert.InRange(train.Pixels.Average(), 0.2, 0.4);   // Fashion-MNIST's mean intensity is about 0.29
        Assert.Equal(1f, train.Pixels.Max());
    }
}
