using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>Times a step: warm-up runs first, then each timed run between two device synchronisations; reports the median.</summary>
internal static class StepTimer
{
    public static double MedianMilliseconds(Device device, int warmup, int repeats, Action step)
    {
        for (int i = 0; i < warmup; i++) Run(step);
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            Synchronize(device);
            var clock = Stopwatch.StartNew();
            Run(step);
            Synchronize(device);
            times[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
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
