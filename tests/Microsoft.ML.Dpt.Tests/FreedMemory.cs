using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests;

/// <summary>
/// Leaves values behind in memory the allocator will hand out again, for tests of kernels that once read memory they
/// never wrote: a gradient that depends on what freed memory held is wrong.
/// </summary>
internal static class FreedMemory
{
    /// <summary>Allocates and frees 20 tensors of 4 KiB to 128 MiB, full of NaN for even
    /// <paramref name="trial"/>s and of large finite values for odd ones.</summary>
    public static void Leave(int trial)
    {
        float value = trial % 2 == 0 ? float.NaN : 1e6f * (trial + 1);
        for (int i = 0; i < 20; i++) full(1L << (10 + i % 16), value).Dispose();
    }
}
