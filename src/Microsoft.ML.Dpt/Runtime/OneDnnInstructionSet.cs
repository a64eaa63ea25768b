using System.Runtime.InteropServices;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>
/// Caps the instruction set that oneDNN, libtorch's CPU convolution library, may use at AVX2, because its AVX-512
/// convolution backward pass in the libtorch that TorchSharp 0.107 ships computes wrong input gradients.
/// <see cref="TorchRuntime.EnsureLoaded"/> applies it before the first tensor exists.
/// </summary>
/// <remarks>
/// On an AVX-512 machine (AMD EPYC, this project's CI) that backward pass reads memory it never wrote: with glibc's
/// defaults, a block that <c>malloc</c> handed out again still held an earlier tensor's values, and a NaN among them
/// made the diffusion model's training stop with a NaN loss within 100-250 steps; finite leftovers instead changed
/// the gradients silently, so two runs with the same seed in one process ended with different weights. oneDNN reads
/// the cap from the <c>ONEDNN_MAX_CPU_ISA</c> environment variable the first time it picks a kernel, so it must be in
/// the native environment before then. A value the user set is left alone (set it to <c>ALL</c> to allow AVX-512).
/// </remarks>
public static class OneDnnInstructionSet
{
    /// <summary>The environment variable oneDNN reads its instruction-set cap from.</summary>
    public const string Variable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The cap set when the user has not chosen one: AVX2 (on AVX-512 machines too).</summary>
    public const string Cap = "AVX2";

    private static readonly object Gate = new();
    private static string? _applied;

    /// <summary>
    /// Sets <see cref="Variable"/> to <see cref="Cap"/> in the process's native environment unless it is already set;
    /// once per process.
    /// </summary>
    /// <returns>The value oneDNN will read: <see cref="Cap"/>, or the user's own value.</returns>
    public static string Prepare()
    {
        lock (Gate)
        {
            if (_applied is null)
            {
                string? current = ReadNative();
                if (string.IsNullOrEmpty(current))
                {
                    WriteNative(Cap);
                    current = Cap;
                }
                _applied = current;
            }
            return _applied;
        }
    }

    /// <summary>One line for logs: the cap in effect.</summary>
    internal static string Describe(string value) => value == Cap
        ? $"oneDNN CPU kernels capped at {Cap}: its AVX-512 convolution backward in this libtorch gives wrong gradients ({Variable}=ALL lifts the cap)."
        : $"oneDNN CPU kernels: {Variable}={value}, as set by the user.";

    // .NET keeps its own copy of the environment on Unix, so Environment.SetEnvironmentVariable would not reach
    // native code there; libc's own getenv and setenv do. On Windows oneDNN reads the process environment block,
    // which Environment.SetEnvironmentVariable changes.
    private static string? ReadNative() => OperatingSystem.IsWindows()
        ? Environment.GetEnvironmentVariable(Variable)
        : Marshal.PtrToStringUTF8(getenv(Variable));

    private static void WriteNative(string value)
    {
        if (OperatingSystem.IsWindows())
            Environment.SetEnvironmentVariable(Variable, value);
        else if (setenv(Variable, value, 0) != 0)
            throw new InvalidOperationException($"Could not set {Variable}={value} in the native environment (setenv failed).");
    }

    [DllImport("libc", CallingConvention = CallingConvention.Cdecl)]
    private static extern IntPtr getenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [DllImport("libc", CallingConvention = CallingConvention.Cdecl)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
