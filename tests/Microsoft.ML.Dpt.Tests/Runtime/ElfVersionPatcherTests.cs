using Microsoft.ML.Dpt.Runtime;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Runtime;

public class ElfVersionPatcherTests
{
    /// <summary>The real TorchSharp native library that the test app ships.</summary>
    private static string LibTorchSharpPath()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"expected TorchSharp's native library at {path}");
        return path;
    }

    [Fact]
    public void ReadsTheVersionRequirementsOfTorchSharpsNativeLibrary()
    {
        var path = LibTorchSharpPath();
        var needed = ElfVersionPatcher.ReadNeededVersions(File.ReadAllBytes(path), path);

        var glibcxx = Assert.Single(needed, n => n.Name == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", glibcxx.Library);
        Assert.False(glibcxx.IsWeak);
        Assert.Contains(needed, n => n.Library == "libc.so.6" && n.Name == "GLIBC_2.2.5");
    }

    [Fact]
    public void MarkWeakChangesOnlyTheFlagsOfTheNamedVersion()
    {
        var path = LibTorchSharpPath();
        var original = File.ReadAllBytes(path);
        var patched = (byte[])original.Clone();

        int changed = ElfVersionPatcher.MarkWeak(patched, path, new[] { "GLIBCXX_3.4.32" });

        Assert.Equal(1, changed);
        var after = ElfVersionPatcher.ReadNeededVersions(patched, path);
        Assert.True(after.Single(n => n.Name == "GLIBCXX_3.4.32").IsWeak);
        Assert.All(after.Where(n => n.Name != "GLIBCXX_3.4.32"), n => Assert.False(n.IsWeak));
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.Single(differing);   // one byte of one vna_flags field: 0 -> VER_FLG_WEAK
        Assert.Equal(0x2, patched[differing[0]]);
        Assert.Equal(0, ElfVersionPatcher.MarkWeak(patched, path, new[] { "GLIBCXX_3.4.32" }));   // idempotent
    }

    [Fact]
    public void RejectsFilesThatAreNotElf()
    {
        var error = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadNeededVersions(new byte[100], "not-elf.so"));
        Assert.Contains("not-elf.so", error.Message);
        Assert.Contains("ELF magic", error.Message);
    }

    [Fact]
    public void RejectsATruncatedLibrary()
    {
        var path = LibTorchSharpPath();
        var truncated = File.ReadAllBytes(path).AsSpan(0, 4096).ToArray();
        var error = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadNeededVersions(truncated, "cut.so"));
        Assert.Contains("cut.so", error.Message);
        Assert.Contains("outside the file", error.Message);
    }

    [Fact]
    public void EveryLogThatAsksGetsTheLoadReportWhenTheSystemLibStdCxxIsOld()
    {
        // The libstdc++ this process actually loaded (TorchSharp needs one, so it is always mapped by now).
        var system = File.ReadAllLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last())
            .First(p => p.Contains("libstdc++.so"));
        bool old = !System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(system)).Contains("GLIBCXX_3.4.32");
        var lines = new List<string>();
        TorchRuntime.EnsureLoaded(lines.Add);
        TorchRuntime.EnsureLoaded(lines.Add);
        if (old || HostMemory.Prepare())
        {
            Assert.Equal(2, lines.Count);
            Assert.Equal(lines[0], lines[1]);
        }
        else
        {
            Assert.Empty(lines);
        }
        if (old)
        {
            Assert.Contains("GLIBCXX_3.4.32", lines[0]);
            Assert.Contains(Path.Combine(".cache", "Microsoft.ML.Dpt", "native"), lines[0]);
        }
        else
        {
            Assert.DoesNotContain(lines, l => l.Contains("GLIBCXX"));
        }
    }

    [Fact]
    public void TorchSharpRunsAfterTheRuntimeIsPrepared()
    {
        TorchRuntime.EnsureLoaded();
        using var a = TorchSharp.torch.arange(6f).reshape(2, 3);
        using var product = a.matmul(a.t());
        Assert.Equal(new float[] { 5, 14, 14, 50 }, product.data<float>().ToArray());
    }
}
