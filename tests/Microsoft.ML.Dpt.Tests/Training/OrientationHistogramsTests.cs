using Microsoft.ML.Dpt.Models;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Training;

public class OrientationHistogramsTests
{
    /// <summary>A 1 × 1 × <paramref name="size"/> × <paramref name="size"/> image: dark left of column <paramref name="edge"/> (or above row <paramref name="edge"/>), bright beyond.</summary>
    private static Tensor Edge(int size, int edge, bool vertical)
    {
        var image = zeros(1, 1, size, size);
        if (vertical) image[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(edge)] = 1;
        else image[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(edge), TensorIndex.Colon] = 1;
        return image;
    }

    /// <summary>Votes per orientation bin summed over every cell: <c>[Bins]</c> (the descriptor is the square root of the cell averages).</summary>
    private static float[] VotesPerBin(Tensor descriptor, int cells) =>
        descriptor.pow(2).view(OrientationHistograms.Bins, cells).sum(1).data<float>().ToArray();

    [Fact]
    public void AnEdgeVotesForItsGradientsDirectionOnly()
    {
        // A vertical edge: the gradient points across it (angle 0), so every vote is in bin 0.
        var vertical = VotesPerBin(OrientationHistograms.Compute(Edge(28, 13, vertical: true)), 49);
        Assert.True(vertical[0] > 0);
        Assert.All(vertical.Skip(1), v => Assert.Equal(0, v, 6));

        // A horizontal edge: angle π/2, 4.5 bins along, split evenly between bins 4 and 5.
        var horizontal = VotesPerBin(OrientationHistograms.Compute(Edge(28, 13, vertical: false)), 49);
        Assert.Equal(horizontal[4], horizontal[5], 4);
        Assert.Equal(vertical[0], horizontal[4] + horizontal[5], 4);
        Assert.All(horizontal.Where((_, bin) => bin != 4 && bin != 5), v => Assert.Equal(0, v, 6));

        // A flat image has no edges and votes for nothing.
        Assert.Equal(0, OrientationHistograms.Compute(ones(1, 1, 28, 28)).abs().sum().item<float>());
    }

    [Fact]
    public void TheDescriptorCoversEveryPixelAndEveryImage()
    {
        Assert.Equal(new long[] { 2, 9 * 7 * 7 }, OrientationHistograms.Compute(zeros(2, 1, 28, 28)).shape);
        // 30 pixels make 7 whole cells and a partial one; colour channels are averaged first.
        var colour = rand(new long[] { 5000, 3, 30, 30 }, generator: new Generator(3));
        var descriptor = OrientationHistograms.Compute(colour);
        Assert.Equal(new long[] { 5000, 9 * 8 * 8 }, descriptor.shape);
        // Images past the first batch get the same descriptor as when computed alone.
        var last = OrientationHistograms.Compute(colour.narrow(0, 4999, 1));
        Assert.True(last.allclose(descriptor.narrow(0, 4999, 1)));
        // An edge in the partial last cell still counts.
        var edgeAtTheBorder = OrientationHistograms.Compute(Edge(30, 29, vertical: true));
        Assert.True(edgeAtTheBorder.view(9, 8, 8)[0, TensorIndex.Colon, 7].sum().item<float>() > 0);

        var error = Assert.Throws<ArgumentException>(() => OrientationHistograms.Compute(zeros(2, 28, 28)));
        Assert.Contains("[N, C, H, W]; got [2, 28, 28]", error.Message);
    }
}
