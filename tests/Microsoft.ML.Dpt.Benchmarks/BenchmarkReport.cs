using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>
/// The benchmark's results file: TorchSharp's rows and, when reference.py's results are given, PyTorch's time for
/// the same row, the ratio TorchSharp / PyTorch (below 1 means TorchSharp is faster) and the model FLOP utilisation
/// (the step's FLOPs, counted by PyTorch's FlopCounterMode, per second, over the measured bf16 matmul rate).
/// </summary>
internal sealed class BenchmarkReport
{
    private readonly string _machine;
    private readonly int _warmup, _repeats;
    private readonly IReadOnlyList<BenchmarkRow> _rows;
    private readonly ReferenceResults? _reference;

    public BenchmarkReport(string machine, int warmup, int repeats, IReadOnlyList<BenchmarkRow> rows, ReferenceResults? reference)
    {
        _machine = machine;
        _warmup = warmup;
        _repeats = repeats;
        _rows = rows;
        _reference = reference;
    }

    /// <summary>Writes benchmark-results.json and benchmark-results.md into <paramref name="folder"/>.</summary>
    public void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        var comparisons = _rows.Select(r => new
        {
            r.Name, r.Precision, r.Parameters, r.ImagesPerStep, TorchSharpMilliseconds = r.MedianMilliseconds, r.ImagesPerSecond, r.Error,
            PyTorchMilliseconds = Reference(r)?.MedianMilliseconds,
            PyTorchParameters = Reference(r)?.Parameters,
            Ratio = Ratio(r),
            TorchSharpMfu = Mfu(r, r.MedianMilliseconds),
            PyTorchMfu = Reference(r)?.MedianMilliseconds is { } pytorch ? Mfu(r, pytorch) : null,
        });
        var json = new
        {
            machine = _machine, referenceMachine = _reference?.Machine, bf16MatmulTeraflops = _reference?.Bf16MatmulTeraflops,
            warmup = _warmup, repeats = _repeats, rows = comparisons,
        };
        File.WriteAllText(Path.Combine(folder, "benchmark-results.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(folder, "benchmark-results.md"), Markdown());
    }

    /// <summary>The table as Markdown.</summary>
    public string Markdown()
    {
        var text = new StringBuilder($"Machine: {_machine}; median of {_repeats} steps after {_warmup} warm-up steps.\n");
        if (_reference is null)
        {
            text.AppendLine().AppendLine("| step | precision | parameters | images/step | median ms | images/s |").AppendLine("|---|---|---|---|---|---|");
            foreach (var r in _rows)
                text.AppendLine(Invariant($"| {r.Name} | {r.Precision} | {r.Parameters:N0} | {r.ImagesPerStep} | {r.MedianMilliseconds:F2} | {r.ImagesPerSecond:F0} |{Suffix(r.Error)}"));
            return text.ToString();
        }
        text.AppendLine(Invariant($"PyTorch reference: {_reference.Machine}; measured bf16 matmul rate {_reference.Bf16MatmulTeraflops:F0} TFLOP/s (the MFU denominator)."))
            .AppendLine().AppendLine("| step | precision | parameters (TorchSharp / PyTorch) | images/step | TorchSharp ms | PyTorch ms | ratio | TorchSharp images/s | MFU TorchSharp / PyTorch |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in _rows)
        {
            var p = Reference(r);
            string mfu = Mfu(r, r.MedianMilliseconds) is { } mine && p?.MedianMilliseconds is { } pytorch && Mfu(r, pytorch) is { } theirs
                ? Invariant($"{100 * mine:F1} % / {100 * theirs:F1} %") : "";
            text.AppendLine(Invariant($"| {r.Name} | {r.Precision} | {r.Parameters:N0} / {(p is null ? "-" : p.Parameters.ToString("N0", CultureInfo.InvariantCulture))} | {r.ImagesPerStep} | {r.MedianMilliseconds:F2} | {(p?.MedianMilliseconds is { } ms ? ms.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {(Ratio(r) is { } ratio ? ratio.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {r.ImagesPerSecond:F0} | {mfu} |{Suffix(r.Error ?? p?.Error)}"));
        }
        return text.ToString();
    }

    private ReferenceRow? Reference(BenchmarkRow row) => _reference?.Find(row);

    private double? Ratio(BenchmarkRow row) =>
        Reference(row)?.MedianMilliseconds is { } pytorch && pytorch > 0 && double.IsFinite(row.MedianMilliseconds) ? row.MedianMilliseconds / pytorch : null;

    private double? Mfu(BenchmarkRow row, double milliseconds) =>
        Reference(row) is { Flops: { } flops } && _reference!.Bf16MatmulTeraflops is { } peak && peak > 0 && double.IsFinite(milliseconds)
            ? flops / (milliseconds / 1000) / (peak * 1e12) : null;

    private static string Suffix(string? error) => error is null ? "" : " " + error;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
