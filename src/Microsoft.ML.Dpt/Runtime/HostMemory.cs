using System.Runtime.InteropServices;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>
/// How libtorch's CPU tensors get their memory from glibc's <c>malloc</c>: reused after a free instead of handed back
/// to the kernel. <see cref="TorchRuntime.EnsureLoaded"/> applies it before the first tensor exists, on Linux with
/// glibc, unless <see cref="OptOutVariable"/> is set.
/// </summary>
/// <remarks>
/// <para>By default glibc maps most blocks above 128 KiB afresh and unmaps them when freed, so every training step
/// page-faults on all its activations again: on the project's 2-core machine the contrastive pretraining spent 40 %
/// of its CPU time in the kernel doing that. Here blocks below <see cref="MappedBlockBytes"/> come from the heap and
/// the heap is never trimmed, so a step's freed memory serves the next; larger blocks (the label-propagation graph's,
/// say) are still mapped and unmapped, so a few huge temporaries do not leave the heap at their size.</para>
/// <para>Reused memory holds what the last tensor there held, NaN included, so a kernel that reads memory it never
/// wrote goes wrong with it. The ones the package meets are avoided where they are called (<c>Models.Convolution</c>,
/// <c>Models.Diffusion.GroupNormalization</c>), and the test suite passes with every block libtorch allocates filled
/// with NaN (docs/performance.md). Earlier versions had glibc zero-fill every block as a guard; that cost 1.1-2.7x
/// on the project's machine and is gone.</para>
/// These are process-wide C-library settings; an application that must keep glibc's defaults sets
/// <see cref="OptOutVariable"/> to 1 before the package is first used.
/// </remarks>
public static class HostMemory
{
    /// <summary>Environment variable that, set to 1, leaves glibc's allocation settings as they are.</summary>
    public const string OptOutVariable = "DPT_DEFAULT_MALLOC";

    /// <summary>Blocks of this size and above are mapped on their own and unmapped when freed: 32 MiB, glibc's largest threshold.</summary>
    public const int MappedBlockBytes = 32 << 20;

    // mallopt parameters, from glibc's malloc.h.
    private const int TrimThreshold = -1;
    private const int TopPad = -2;
    private const int MmapThreshold = -3;

    /// <summary>Extra heap requested from the kernel at a time, so that a growing heap asks rarely: 64 MiB.</summary>
    private const int TopPadBytes = 64 << 20;

    private static readonly object Gate = new();
    private static bool? _applied;

    /// <summary>
    /// Applies the settings once per process (on Linux with glibc, unless <see cref="OptOutVariable"/> is 1); later
    /// calls return the first answer.
    /// </summary>
    /// <returns>True when glibc took the settings; false where there is no glibc, it refused them, or the
    /// application opted out.</returns>
    public static bool Prepare()
    {
        lock (Gate)
        {
            _applied ??= RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && Environment.GetEnvironmentVariable(OptOutVariable) != "1"
                && TrySetGlibcOptions();
            return _applied.Value;
        }
    }

    /// <summary>One line for logs: what <see cref="Prepare"/> did.</summary>
    internal static string Describe(bool applied) => applied
        ? $"CPU tensors' memory blocks under {MappedBlockBytes >> 20} MiB are reused rather than unmapped ({OptOutVariable}=1 keeps glibc's defaults)."
        : "";

    private static bool TrySetGlibcOptions()
    {
        try
        {
            // mallopt returns 1 on success and 0 on error.
            return mallopt(MmapThreshold, MappedBlockBytes) == 1
                && mallopt(TrimThreshold, int.MaxValue) == 1 && mallopt(TopPad, TopPadBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;   // musl and other C libraries: no mallopt, or not glibc's
        }
    }

    [DllImport("libc", CallingConvention = CallingConvention.Cdecl)]
    private static extern int mallopt(int parameter, int value);
}
