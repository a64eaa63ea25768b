using System.Runtime.CompilerServices;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>
/// Prepares TorchSharp's native library as soon as any type of this package is first used. This matters because
/// TorchSharp's own static initialiser fails for the whole process if it runs before the libstdc++ fix; code
/// that calls TorchSharp directly before touching this package should call <see cref="TorchRuntime.EnsureLoaded"/>
/// first.
/// </summary>
internal static class NativeLoadingInitializer
{
#pragma warning disable CA2255 // a module initializer is the only hook that runs before TorchSharp's static constructor
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        try
        {
            TorchRuntime.EnsureLoaded();
        }
        catch (Exception e) when (e is IOException or DllNotFoundException or InvalidDataException or UnauthorizedAccessException)
        {
            // Not fatal here: the first trainer or loader calls EnsureLoaded again and reports the error there.
        }
    }
}
