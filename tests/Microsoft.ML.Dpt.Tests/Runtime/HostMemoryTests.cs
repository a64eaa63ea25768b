using System.Runtime.InteropServices;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Runtime;

/// <summary>
/// The settings <see cref="TorchRuntime.EnsureLoaded"/> applies (the test assembly's initializer calls it, as the
/// package's own initializer does in an app). CI runs on Linux with glibc, where they must take effect.
/// </summary>
public class HostMemoryTests
{
    /// <summary>Whether the settings should be in effect: on Linux (glibc), unless the run opted out.</summary>
    private static bool Expected => RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && Environment.GetEnvironmentVariable(HostMemory.OptOutVariable) != "1";

    [Fact]
    public void GlibcTakesTheSettingsOnLinux()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Equal(Expected, HostMemory.Prepare());
        Assert.Equal(Expected, HostMemory.Prepare());   // a second call gives the first answer
    }

    [Fact]
    public void TrainingStepsReuseFreedMemoryInsteadOfPageFaulting()
    {
        if (!Expected) return;
        using var network = ImageClassifierNetwork.Create(new NetworkSpec(ClassifierNetwork.SmallCnn, 1, 10, 32));
        using var images = rand(128, 1, 28, 28);
        using var labels = randint(0, 10, 128);
        void Step()
        {
            using var scope = NewDisposeScope();
            nn.functional.cross_entropy(network.forward(images), labels).backward();
        }
        for (int i = 0; i < 3; i++) Step();   // the heap grows to the step's size
        long before = MinorPageFaults();
        const int Steps = 5;
        for (int i = 0; i < Steps; i++) Step();
        long perStep = (MinorPageFaults() - before) / Steps;

        // With glibc's defaults each step maps its activations afresh: about 13,000 faults per step for this network
        // and batch on the project's machine.
        Assert.True(perStep < 2000, $"{perStep} minor page faults per training step");
    }

    /// <summary>The process's minor page faults so far (field 10 of /proc/self/stat).</summary>
    private static long MinorPageFaults()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7]);   // the fields after the name start at field 3
    }
}
