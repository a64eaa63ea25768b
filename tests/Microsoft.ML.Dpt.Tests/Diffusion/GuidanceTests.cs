using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Diffusion;

public class GuidanceTests
{
    /// <summary>A fake denoiser whose output is label + 10·x, recording the batch sizes it sees.</summary>
    private sealed class LabelEcho : IConditionalDenoiser
    {
        public long NullClass => 3;
        public List<long> BatchSizes { get; } = new();
        public List<long[]> Labels { get; } = new();

        public Tensor PredictNoise(Tensor noisy, int timestep, Tensor labels)
        {
            BatchSizes.Add(noisy.shape[0]);
            Labels.Add(labels.data<long>().ToArray());
            return labels.to(ScalarType.Float32).view(-1, 1) + 10 * noisy;
        }
    }

    [Fact]
    public void CombinesConditionalAndUnconditionalInOneBatchedPass()
    {
        TorchRuntime.EnsureLoaded();
        var model = new LabelEcho();
        using var labels = tensor(new long[] { 0, 2 });
        using var x = tensor(new float[] { 0.5f, -1f }).view(2, 1);
        var guided = new ClassifierFreeGuidance(model, labels, scale: 0.4);

        using var eps = guided.PredictNoise(x, 7);

        Assert.Equal(new long[] { 4 }, model.BatchSizes);                    // one forward pass over [x, x]
        Assert.Equal(new long[] { 0, 2, 3, 3 }, model.Labels[0]);            // real labels, then the null class
        // ε_c = y + 10x, ε_u = 3 + 10x  →  ε = ε_c + 0.4 (y − 3)
        Assert.Equal(new[] { 0f + 5f + 0.4f * (0 - 3), 2f - 10f + 0.4f * (2 - 3) }, eps.data<float>().ToArray(), new Tolerance());
    }

    [Fact]
    public void ScaleZeroIsThePlainConditionalModel()
    {
        var model = new LabelEcho();
        using var labels = tensor(new long[] { 1 });
        using var x = tensor(new float[] { 0.25f }).view(1, 1);
        using var eps = new ClassifierFreeGuidance(model, labels, 0).PredictNoise(x, 1);
        Assert.Equal(new long[] { 1 }, model.BatchSizes);
        Assert.Equal(3.5f, eps.item<float>(), 5);
    }

    [Fact]
    public void TheFormulaOnItsOwn()
    {
        using var c = tensor(new[] { 1f, 2f });
        using var u = tensor(new[] { 0f, 4f });
        using var eps = ClassifierFreeGuidance.Combine(c, u, 2);
        Assert.Equal(new[] { 3f, -2f }, eps.data<float>().ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClassifierFreeGuidance(new LabelEcho(), c, -1));
    }

    private sealed class Tolerance : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) < 1e-5;
        public int GetHashCode(float obj) => 0;
    }
}
