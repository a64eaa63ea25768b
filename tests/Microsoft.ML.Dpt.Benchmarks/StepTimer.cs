using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>Times a step: warm-up runs first, then each timed run between two device synchronisations; reports the median.</summary>
internal static class StepTimer
{
    public static double MedianMilliseconds(Device device, int warmup, int repeats, Action step) =>
        Measure(device, warmup, repeats, step).Milliseconds;

    /// <summary>The median step time, and the median time until the step returned to the host (before the
    /// synchronisation): where the two are close, the host issuing work is the bottleneck, not the device.</summary>
    public static (double Milliseconds, double HostMilliseconds) Measure(Device device, int warmup, int repeats, Action step)
    {
        for (int i = 0; i < warmup; i++) Run(step);
        var times = new double[repeats];
        var hostTimes = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            Synchronize(device);
            var clock = Stopwatch.StartNew();
            Run(step);
            hostTimes[i] = clock.Elapsed.TotalMilliseconds;
            Synchronize(device);
            times[i] = clock.Elapsed.TotalMilliseconds;
        }
        return (Median(times), Median(hostTimes));
    }

    private static double Median(double[] values)
    {
        Array.Sort(values);
        int n = values.Length;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static void Run(Action step)
    {
        using var scope = NewDisposeScope();   // one scope per step, as in training
        step();
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
