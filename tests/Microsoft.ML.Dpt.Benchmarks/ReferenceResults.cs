using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>One row that reference.py measured in PyTorch eager: the same step, network and batch as a <see cref="BenchmarkRow"/>
/// (no time, and an error, where it failed).</summary>
internal sealed record ReferenceRow(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("precision")] string Precision,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("images_per_step")] int ImagesPerStep,
    [property: JsonPropertyName("median_ms")] double? MedianMilliseconds,
    [property: JsonPropertyName("flops")] double? Flops,
    [property: JsonPropertyName("error")] string? Error);

/// <summary>What reference.py wrote: its machine, the measured bf16 matmul rate and its rows.</summary>
internal sealed record ReferenceResults(
    [property: JsonPropertyName("machine")] string Machine,
    [property: JsonPropertyName("bf16_matmul_tflops")] double? Bf16MatmulTeraflops,
    [property: JsonPropertyName("rows")] IReadOnlyList<ReferenceRow> Rows)
{
    /// <summary>Reads the file, with an error that names it when it is missing or not reference.py's format.</summary>
    public static ReferenceResults Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--reference: no file '{path}'; run reference.py first (see docs/performance.md).", path);
        try
        {
            return JsonSerializer.Deserialize<ReferenceResults>(File.ReadAllText(path))
                ?? throw new InvalidDataException($"--reference: '{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"--reference: '{path}' is not the JSON that reference.py writes: {e.Message}", e);
        }
    }

    /// <summary>The row measured for the same step at the same precision, if any.</summary>
    public ReferenceRow? Find(BenchmarkRow row) => Rows.FirstOrDefault(r => r.Name == row.Name && r.Precision == row.Precision);
}
