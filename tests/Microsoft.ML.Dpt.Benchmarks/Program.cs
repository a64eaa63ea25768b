using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Dpt.Benchmarks;
using Microsoft.ML.Dpt.Runtime;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

// Times the training and sampling steps of issue 5 and writes benchmark-results.json and .md.
// Usage: dotnet run -c Release --project tests/Microsoft.ML.Dpt.Benchmarks -- [--device auto|cpu|cuda] [--small]
//        [--warmup N] [--repeats N] [--output DIR]
// --small shrinks the batches (for a CPU); the PyTorch reference (reference.py) is still owed, see docs/performance.md.
var device = DptDevice.Auto;
bool small = false;
int warmup = 3, repeats = 11;
string output = "out/benchmarks";
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
    switch (args[i])
    {
        case "--device": device = Enum.Parse<DptDevice>(Next(), ignoreCase: true); break;
        case "--small": small = true; break;
        case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--output": output = Next(); break;
        default: Console.Error.WriteLine($"error: unknown option '{args[i]}'"); return 1;
    }
}

var torchDevice = DeviceSelection.Resolve(device, Console.WriteLine);
bool onCuda = torchDevice.type == DeviceType.CUDA;
// fp32 with TF32 off, fp32 with TF32 on (CUDA only: the package's training setting), and bf16 weights and activations.
var settings = new List<(string Name, ScalarType Type, bool Tf32)> { ("fp32", ScalarType.Float32, false) };
if (onCuda) settings.AddRange(new[] { ("tf32", ScalarType.Float32, true), ("bf16", ScalarType.BFloat16, true) });

var rows = new List<BenchmarkRow>();
var benchmarks = new Benchmarks(torchDevice, small, warmup, repeats);
foreach (var benchmark in benchmarks.All())
foreach (var (name, type, tf32) in settings)
{
    if (onCuda)
    {
        backends.cuda.matmul.allow_tf32 = tf32;
        backends.cudnn.allow_tf32 = tf32;
    }
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

Directory.CreateDirectory(output);
var machine = $"{(onCuda ? "CUDA GPU" : "CPU")}, {Environment.ProcessorCount} cores, TorchSharp 0.107, batches {(small ? "small (--small)" : "full")}";
File.WriteAllText(Path.Combine(output, "benchmark-results.json"), JsonSerializer.Serialize(new { machine, warmup, repeats, rows }, new JsonSerializerOptions { WriteIndented = true }));
var table = new StringBuilder($"Machine: {machine}; median of {repeats} steps after {warmup} warm-up steps.\n\n")
    .AppendLine("| step | precision | parameters | images/step | median ms | images/s |").AppendLine("|---|---|---|---|---|---|");
foreach (var r in rows)
    table.AppendLine($"| {r.Name} | {r.Precision} | {r.Parameters:N0} | {r.ImagesPerStep} | {r.MedianMilliseconds:F2} | {r.ImagesPerSecond:F0} |{(r.Error is null ? "" : " " + r.Error)}");
File.WriteAllText(Path.Combine(output, "benchmark-results.md"), table.ToString());
Console.WriteLine(table);
return 0;
