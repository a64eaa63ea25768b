using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>
/// Counts how often TorchSharp 0.107's <c>Scalar</c> finalizer race strikes: <c>a + b</c> passes an implicitly made
/// <c>Scalar</c> (alpha = 1) that nothing references once its handle is read, so a garbage collection during the
/// native call can let the finalizer free it before libtorch reads it ("Expected false to be true ... toFloat").
/// A background thread allocates, as a test runner's or an app's other threads do, so that collections happen
/// while the main thread is inside libtorch. Compare runs under different settings (DOTNET_JITMinOpts, DOTNET_GCgen0size,
/// MALLOC_PERTURB_) side by side; see docs/performance.md.
/// </summary>
internal static class ScalarRaceProbe
{
    /// <summary>Runs <paramref name="seconds"/> of additions of two <paramref name="elements"/>-element tensors.</summary>
    public static (long Operations, long Failures, int Collections) Run(double seconds, long elements)
    {
        var stop = DateTime.UtcNow.AddSeconds(seconds);
        int collectionsBefore = GC.CollectionCount(0);
        var churn = new Thread(() =>
        {
            var recent = new List<byte[]>();
            while (DateTime.UtcNow < stop)
            {
                recent.Add(new byte[200]);
                if (recent.Count > 1000) recent.Clear();
            }
        }) { IsBackground = true };
        churn.Start();
        using var a = randn(elements);
        using var b = randn(elements);
        long operations = 0, failures = 0;
        while (DateTime.UtcNow < stop)
        {
            try
            {
                using var sum = a + b;
            }
            catch (ExternalException)
            {
                failures++;
            }
            operations++;
        }
        churn.Join();
        return (operations, failures, GC.CollectionCount(0) - collectionsBefore);
    }
}
