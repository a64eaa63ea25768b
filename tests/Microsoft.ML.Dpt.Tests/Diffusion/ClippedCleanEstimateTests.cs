using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Diffusion;

public class ClippedCleanEstimateTests
{
    /// <summary>A predictor that always returns the same ε.</summary>
    private sealed class FixedNoise : INoisePredictor
    {
        private readonly float[] _eps;
        public FixedNoise(params float[] eps) => _eps = eps;
        public Tensor PredictNoise(Tensor noisy, int timestep) => tensor(_eps).view(noisy.shape);
    }

    [Fact]
    public void TheCleanEstimateIsClampedToTheDataRangeAndLeftAloneInsideIt()
    {
        TorchRuntime.EnsureLoaded();
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Linear);
        const int T = 900;
        // x_t = √ᾱ x₀ + √(1−ᾱ) ε for x₀ = (0.5, 3, −7) and ε = (0.2, −0.1, 0.3): the first is inside [−1, 1], the others not.
        double a = schedule.SignalScale(T), s = schedule.NoiseScale(T);
        float[] x0 = { 0.5f, 3f, -7f }, eps = { 0.2f, -0.1f, 0.3f };
        using var noisy = tensor(x0.Zip(eps, (x, e) => (float)(a * x + s * e)).ToArray());

        using var clippedEps = new ClippedCleanEstimate(new FixedNoise(eps), schedule).PredictNoise(noisy, T);
        using var clean = schedule.CleanEstimate(noisy, clippedEps, T);

        Assert.Equal(new[] { 0.5f, 1f, -1f }, clean.data<float>().ToArray(), new Tolerance(1e-3));
        Assert.Equal(eps[0], clippedEps.data<float>()[0], 4);   // inside the range, ε is unchanged
    }

    [Fact]
    public void ClampingChangesOnlySamplingAndTravelsWithTheSavedGenerator()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.SmallTrain(4).ToDataView(ml);
        Microsoft.ML.Dpt.Stages.ConditionalDiffusionTransformer Fit(bool clip)
        {
            var options = Stages.ConditionalDiffusionAugmenterTests.TinyOptions("Label");
            options.ClipDenoisedImages = clip;
            options.Seed = 3;
            return ml.Dpt().ConditionalDiffusionAugmenter(options).Fit(data);
        }
        using var clamped = Fit(clip: true);
        using var unclamped = Fit(clip: false);

        Assert.True(clamped.Generator.ClipDenoisedImages);
        Assert.False(unclamped.Generator.ClipDenoisedImages);
        // The same training (4 steps: x̂₀ is far outside [−1, 1]), other samples.
        var clampedImages = clamped.Generator.Generate(3, 4, seed: 2);
        Assert.NotEqual(clampedImages, unclamped.Generator.Generate(3, 4, seed: 2));

        using var folder = TestData.NewFolder();
        foreach (var (name, model) in new[] { ("clamped", clamped), ("unclamped", unclamped) })
        {
            model.Generator.Save(folder.File(name + ".dpt"));
            using var loaded = ml.Dpt().LoadGenerator(folder.File(name + ".dpt"), DptDevice.Cpu);
            Assert.Equal(model.Generator.ClipDenoisedImages, loaded.ClipDenoisedImages);
            Assert.Equal(model.Generator.Generate(3, 4, seed: 2), loaded.Generate(3, 4, seed: 2));
        }
    }

    private sealed class Tolerance : IEqualityComparer<float>
    {
        private readonly double _tolerance;
        public Tolerance(double tolerance) => _tolerance = tolerance;
        public bool Equals(float x, float y) => Math.Abs(x - y) < _tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
