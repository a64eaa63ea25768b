using Xunit;

// TorchSharp's generator is process-wide; tests that seed it must not interleave. (CI has 2 cores anyway.)
[assembly: CollectionBehavior(DisableTestParallelization = true)]
