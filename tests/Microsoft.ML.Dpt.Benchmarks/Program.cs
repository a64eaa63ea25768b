using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.Dpt.Benchmarks;
using Microsoft.ML.Dpt.Runtime;
using TorchSharp;
using static TorchSharp.torch;

// Times the training and sampling steps of issue 5 and writes benchmark-results.json and .md.
// Usage: dotnet run -c Release --project tests/Microsoft.ML.Dpt.Benchmarks -- [--device auto|cpu|cuda] [--small]
//        [--precision fp32,tf32,bf16] [--warmup N] [--repeats N] [--output DIR] [--reference FILE] [--breakdown]
// --small shrinks the batches (for a CPU). --reference names the JSON that reference.py (the same networks and steps
// in PyTorch eager) wrote; the table then gets PyTorch's times, the ratios and the model FLOP utilisation.
// --breakdown prints where the time of a U-Net diffusion step goes instead (phase by phase, device and host time).
// --scalar-race SECONDS counts TorchSharp's Scalar finalizer race instead (ScalarRaceProbe; CPU, no results file).
// --padding-cost times what Convolution's CPU input padding costs the tiny U-Net's training step at the CPU budget's
// batch of 64 instead (PaddingCostProbe), and writes DIR/padding-cost.md.
var device = DptDevice.Auto;
bool small = false;
string[]? precisions = null;
int warmup = 3, repeats = 11;
string output = "out/benchmarks";
string? reference = null;
bool breakdown = false;
double? scalarRaceSeconds = null;
bool paddingCost = false;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
    switch (args[i])
    {
        case "--device": device = Enum.Parse<DptDevice>(Next(), ignoreCase: true); break;
        case "--small": small = true; break;
        case "--precision": precisions = Next().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries); break;
        case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--output": output = Next(); break;
        case "--reference": reference = Next(); break;
        case "--breakdown": breakdown = true; break;
        case "--scalar-race": scalarRaceSeconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--padding-cost": paddingCost = true; break;
        default: Console.Error.WriteLine($"error: unknown option '{args[i]}'"); return 1;
    }
}

if (scalarRaceSeconds is double seconds)
{
    TorchRuntime.EnsureLoaded(Console.WriteLine);
    foreach (long elements in new long[] { 20_000, 2_000_000 })
    {
        var (operations, failures, collections) = ScalarRaceProbe.Run(seconds, elements);
        Console.WriteLine($"scalar race, a + b of {elements:N0} floats for {seconds} s: {operations:N0} additions, {failures:N0} failed, {collections:N0} gen0 collections");
    }
    return 0;
}

if (paddingCost)
{
    TorchRuntime.EnsureLoaded(Console.WriteLine);
    string markdown = PaddingCostProbe.Run(batch: 64, warmup, repeats);
    Directory.CreateDirectory(output);
    File.WriteAllText(Path.Combine(output, "padding-cost.md"), markdown);
    Console.WriteLine(markdown);
    return 0;
}

var torchDevice = DeviceSelection.Resolve(device, Console.WriteLine);
bool onCuda = torchDevice.type == DeviceType.CUDA;
// fp32 with TF32 off, fp32 with TF32 on (CUDA only: the package's training setting), and bf16 weights and activations.
var known = new Dictionary<string, (ScalarType Type, bool Tf32)>
{
    ["fp32"] = (ScalarType.Float32, false),
    ["tf32"] = (ScalarType.Float32, true),
    ["bf16"] = (ScalarType.BFloat16, true),
};
precisions ??= onCuda ? new[] { "fp32", "tf32", "bf16" } : new[] { "fp32" };
foreach (var p in precisions)
    if (!known.ContainsKey(p)) { Console.Error.WriteLine($"error: --precision '{p}' is not one of fp32, tf32, bf16"); return 1; }
ReferenceResults? referenceRows;
try
{
    referenceRows = reference is null ? null : ReferenceResults.Load(reference);
}
catch (Exception e) when (e is IOException or InvalidDataException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

// Sets TF32 for a precision's runs (on CUDA) and returns the tensors' type.
ScalarType Use(string precision)
{
    var (type, tf32) = known[precision];
    if (onCuda)
    {
        backends.cuda.matmul.allow_tf32 = tf32;
        backends.cudnn.allow_tf32 = tf32;
    }
    return type;
}

var benchmarks = new Benchmarks(torchDevice, small, warmup, repeats);
if (breakdown)
{
    // Where the time of a diffusion step goes (see docs/performance.md); no results file.
    foreach (var name in precisions)
    {
        foreach (var (phase, ms, host) in benchmarks.DiffusionPhases(Use(name)))
            Console.WriteLine($"phases U-Net Small [{name}] {phase}: {ms:F2} ms, host {host:F2} ms");
    }
    return 0;
}

var rows = new List<BenchmarkRow>();
foreach (var benchmark in benchmarks.All())
foreach (var name in precisions)
{
    var type = Use(name);
    BenchmarkRow row;
    try
    {
        row = benchmark(type) with { Precision = name };
    }
    catch (Exception e) when (e is ExternalException or ArgumentException or InvalidOperationException)
    {
        row = new BenchmarkRow("(failed)", name, 0, 0, double.NaN, e.Message.Split('\n')[0]);
    }
    rows.Add(row);
    Console.WriteLine($"{row.Name} [{row.Precision}]: {row.MedianMilliseconds:F2} ms median, {row.ImagesPerSecond:F0} images/s, {row.Parameters:N0} parameters{(row.Error is null ? "" : " ERROR " + row.Error)}");
}

var machine = $"{(onCuda ? "CUDA GPU" : "CPU")}, {Environment.ProcessorCount} cores, TorchSharp 0.107, batches {(small ? "small (--small)" : "full")}";
var report = new BenchmarkReport(machine, warmup, repeats, rows, referenceRows);
report.Write(output);
Console.WriteLine(report.Markdown());
return 0;
