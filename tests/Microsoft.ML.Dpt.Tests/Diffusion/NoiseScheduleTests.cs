using Microsoft.ML.Dpt.Diffusion;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Diffusion;

public class NoiseScheduleTests
{
    [Fact]
    public void LinearScheduleMatchesItsClosedForm()
    {
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Linear, 1000);
        Assert.Equal(1e-4, schedule.Beta(0), 12);
        Assert.Equal(0.02, schedule.Beta(999), 12);
        Assert.Equal(1e-4 + (0.02 - 1e-4) * 500 / 999, schedule.Beta(500), 12);
        double product = 1;
        for (int t = 0; t < 1000; t++) product *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999);
        Assert.Equal(product, schedule.AlphaBar(999), 12);
        Assert.Equal(4.04e-5, schedule.AlphaBar(999), 6);   // the well-known ᾱ_T of DDPM's schedule
    }

    [Fact]
    public void CosineScheduleMatchesItsClosedFormAwayFromTheCap()
    {
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Cosine, 1000);
        double F(double t) => Math.Pow(Math.Cos((t / 1000 + 0.008) / 1.008 * Math.PI / 2), 2);
        foreach (var t in new[] { 0, 100, 500, 900 })
            Assert.Equal(F(t + 1) / F(0), schedule.AlphaBar(t), 9);
        Assert.True(schedule.Beta(999) <= 0.999);
    }

    [Fact]
    public void DerivedQuantitiesAreConsistent()
    {
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Cosine, 200);
        for (int t = 0; t < 200; t += 37)
        {
            Assert.Equal(1.0, Math.Pow(schedule.SignalScale(t), 2) + Math.Pow(schedule.NoiseScale(t), 2), 12);
            Assert.Equal(Math.Log(schedule.SignalScale(t) / schedule.NoiseScale(t)), schedule.HalfLogSnr(t), 10);
        }
        Assert.True(Enumerable.Range(1, 199).All(t => schedule.HalfLogSnr(t) < schedule.HalfLogSnr(t - 1)));
    }

    [Fact]
    public void NoiseEstimateUndoesCleanEstimate()
    {
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Linear, 1000);
        TorchSharp.torch.random.manual_seed(3);
        using var clean = TorchSharp.torch.rand(4, 1, 5, 5) * 2 - 1;
        using var noise = TorchSharp.torch.randn(4, 1, 5, 5);
        foreach (var t in new[] { 0, 500, 999 })
        {
            // Noise the image as training does, then recover each part from the other.
            using var noisy = schedule.SignalScale(t) * clean + schedule.NoiseScale(t) * noise;
            using var recoveredNoise = schedule.NoiseEstimate(noisy, clean, t);
            using var recoveredClean = schedule.CleanEstimate(noisy, noise, t);
            Assert.True(recoveredNoise.allclose(noise, rtol: 0, atol: 1e-3), $"noise at t = {t}");
            Assert.True(recoveredClean.allclose(clean, rtol: 0, atol: 1e-3), $"clean image at t = {t}");
        }
    }

    [Fact]
    public void SamplingTimestepsStartFromPureNoiseAndDescend()
    {
        var schedule = NoiseSchedule.Create(NoiseScheduleKind.Linear, 1000);
        var steps = schedule.SamplingTimesteps(25);
        Assert.Equal(25, steps.Length);
        Assert.Equal(999, steps[0]);
        Assert.True(steps.Zip(steps.Skip(1)).All(p => p.First > p.Second));
        Assert.Equal(0, steps[^1]);
        Assert.Equal(Enumerable.Range(0, 1000).Reverse(), schedule.SamplingTimesteps(1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.SamplingTimesteps(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.SamplingTimesteps(1001));
    }
}
