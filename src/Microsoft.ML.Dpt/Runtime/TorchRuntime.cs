using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using TorchSharp;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>
/// Makes TorchSharp's native library loadable before any tensor is made: on Linux machines whose libstdc++
/// is older than the one TorchSharp was built against, and on machines that bring their own libtorch
/// (a PyTorch installation named by <c>DPT_LIBTORCH_DIR</c>). It also sets how CPU tensors get their memory
/// (<see cref="HostMemory"/>).
/// </summary>
/// <remarks>
/// How the libstdc++ fix works: TorchSharp's <c>libLibTorchSharp.so</c> requires <c>GLIBCXX_3.4.32</c> for one
/// symbol it never calls. When loading it fails for exactly that reason, a copy is written to a per-user cache
/// (keyed by the original file's SHA-256) with that requirement marked weak, and the copy is loaded first.
/// Its SONAME is <c>libLibTorchSharp.so</c>, so every later <c>dlopen</c> of that name by TorchSharp finds the
/// loaded copy. The NuGet cache and system libraries are never modified.
/// </remarks>
public static class TorchRuntime
{
    /// <summary>Environment variable that names a libtorch folder to use, such as PyTorch's <c>torch/lib</c>.</summary>
    public const string LibTorchDirVariable = "DPT_LIBTORCH_DIR";

    private const string LibTorchSharpFile = "libLibTorchSharp.so";

    /// <summary>Needed versions this package knows to be unused by the symbols TorchSharp calls.</summary>
    private static readonly string[] SafeToWeakenVersions = { "GLIBCXX_3.4.32" };

    private static readonly object Gate = new();
    private static bool _prepared;

    /// <summary>What <see cref="EnsureLoaded"/> did, for logs; empty when nothing special was needed.</summary>
    public static string LoadReport { get; private set; } = "";

    /// <summary>
    /// Prepares the native libraries once per process; later calls return at once. Trainers call it themselves.
    /// </summary>
    /// <param name="log">Receives one line when something was done (glibc settings, a patched copy loaded, a libtorch
    /// folder used), on every call, so that each trainer's log states how TorchSharp was loaded.</param>
    public static void EnsureLoaded(Action<string>? log = null)
    {
        lock (Gate)
        {
            if (!_prepared)
            {
                var lines = new List<string>();
                // Before the first tensor: the C library's settings apply to blocks allocated afterwards.
                string memory = HostMemory.Describe(HostMemory.Prepare());
                if (memory.Length > 0) lines.Add(memory);
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
                {
                    PreloadLibTorchDir(lines);
                    PrepareLibTorchSharp(lines);
                }
                LoadReport = string.Join(" ", lines);
                _prepared = true;
            }
        }
        if (LoadReport.Length > 0) log?.Invoke(LoadReport);
    }

    private static void PreloadLibTorchDir(List<string> lines)
    {
        var dir = Environment.GetEnvironmentVariable(LibTorchDirVariable);
        if (string.IsNullOrWhiteSpace(dir)) return;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{LibTorchDirVariable} is set to '{dir}', which is not a folder. Point it at a libtorch 'lib' folder such as PyTorch's torch/lib, or unset it.");
        // Dependency order, so that each library finds the ones it needs already loaded by SONAME.
        string[] order = { "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" };
        var loaded = new List<string>();
        foreach (var name in order)
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            NativeLibrary.Load(path);
            loaded.Add(name);
        }
        if (!loaded.Contains("libtorch_cpu.so"))
            throw new FileNotFoundException($"{LibTorchDirVariable}='{dir}' has no libtorch_cpu.so; it must be a libtorch 'lib' folder such as PyTorch's torch/lib.");
        lines.Add($"TorchSharp uses libtorch from {LibTorchDirVariable}={dir} ({string.Join(", ", loaded)}).");
    }

    private static void PrepareLibTorchSharp(List<string> lines)
    {
        var original = FindLibTorchSharp();
        if (original is null) return;   // Leave the search and its error message to TorchSharp.
        PreloadTorchDependencies(Path.GetDirectoryName(original)!);
        string? failure = TryLoad(original);
        if (failure is null) return;

        var missing = Regex.Matches(failure, @"version [`']([A-Za-z_]+[0-9._]*)' not found").Select(m => m.Groups[1].Value).ToArray();
        if (missing.Length == 0 || missing.Any(v => !SafeToWeakenVersions.Contains(v)))
            return;   // Not the known libstdc++ case: TorchSharp reports its own error.

        var patched = WritePatchedCopy(original);
        var patchedFailure = TryLoad(patched);
        if (patchedFailure is not null)
            throw new DllNotFoundException($"TorchSharp's {LibTorchSharpFile} needs a newer libstdc++ ({string.Join(", ", missing)}); the patched copy '{patched}' did not load either: {patchedFailure}");
        lines.Add($"This system's libstdc++ lacks {string.Join(", ", missing)}, needed by TorchSharp for a symbol it never calls; loaded a copy of {original} with that requirement marked weak: {patched}.");
    }

    /// <summary>Where .NET would find TorchSharp's native library for this app.</summary>
    private static string? FindLibTorchSharp()
    {
        var folders = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirs)
            folders.AddRange(searchDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        folders.Add(AppContext.BaseDirectory);
        var torchSharpDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchSharpDir))
        {
            folders.Add(torchSharpDir);
            folders.Add(Path.Combine(torchSharpDir, "runtimes", "linux-x64", "native"));
        }
        return folders.Select(f => Path.Combine(f, LibTorchSharpFile)).FirstOrDefault(File.Exists);
    }

    /// <summary>libLibTorchSharp's runpath is $ORIGIN, which a copy elsewhere loses; load its dependencies by path.</summary>
    private static void PreloadTorchDependencies(string folder)
    {
        foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path)) NativeLibrary.TryLoad(path, out _);
        }
    }

    private static string? TryLoad(string path)
    {
        try
        {
            NativeLibrary.Load(path);
            return null;
        }
        catch (DllNotFoundException e)
        {
            return e.Message;
        }
    }

    private static string WritePatchedCopy(string original)
    {
        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var folder = Path.Combine(CacheRoot(), "native", hash);
        var target = Path.Combine(folder, LibTorchSharpFile);
        if (File.Exists(target)) return target;
        if (ElfVersionPatcher.MarkWeak(bytes, original, SafeToWeakenVersions) == 0)
            throw new InvalidDataException($"'{original}' has no strong requirement on {string.Join(", ", SafeToWeakenVersions)} to relax.");
        Directory.CreateDirectory(folder);
        // Write then rename, so that a concurrent process never loads a half-written file.
        var temp = target + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, target, overwrite: true);
        return target;
    }

    private static string CacheRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "Microsoft.ML.Dpt");
    }
}
