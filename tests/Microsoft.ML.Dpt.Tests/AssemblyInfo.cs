using System.Runtime.CompilerServices;
using Microsoft.ML.Dpt.Runtime;
using Xunit;

// TorchSharp's generator is process-wide; tests that seed it must not interleave. (CI has 2 cores anyway.)
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Microsoft.ML.Dpt.Tests;

internal static class TestAssemblyInitializer
{
    /// <summary>Some tests call TorchSharp before any package type; prepare the native runtime first, as an app would.</summary>
    [ModuleInitializer]
    internal static void PrepareTorch() => TorchRuntime.EnsureLoaded();
}
