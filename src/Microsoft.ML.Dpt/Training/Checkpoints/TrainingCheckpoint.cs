using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Persistence;
using Microsoft.ML.Dpt.Training.Optimization;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Checkpoints;

/// <summary>
/// The state of a training loop in one file, written every <see cref="Interval"/> steps and at the end: the
/// network (a module that holds every trained part), its EMA copy and update count where the loop keeps one, the optimiser's moments, the algorithm's own state (FreeMatch's
/// thresholds) and the steps done. A loop that finds a checkpoint with its own fingerprint continues from it;
/// one whose steps are all done is not trained again, which is how a stopped DPT run skips finished stages.
/// </summary>
/// <remarks>
/// The loop reseeds TorchSharp's generator at every multiple of <see cref="Interval"/> from the run's seed and the
/// step, so a resumed run draws the same batches, noise and augmentations as one that was never stopped and ends
/// with the same weights (bit for bit on the CPU).
/// </remarks>
internal sealed class TrainingCheckpoint
{
    private const string Kind = "TrainingCheckpoint";
    private const int FormatVersion = 2;   // 2: the flat optimisers' state

    private TrainingCheckpoint(string path, int interval, string fingerprint)
    {
        Path = path;
        Interval = interval;
        Fingerprint = fingerprint;
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }

    /// <summary>Steps between saves.</summary>
    public int Interval { get; }

    /// <summary>Digest of what decides the run's result.</summary>
    public string Fingerprint { get; }

    /// <summary>A checkpoint in <paramref name="folder"/> named after the stage and the fingerprint, or null when <paramref name="folder"/> is null.</summary>
    public static TrainingCheckpoint? In(string? folder, int interval, string stage, TrainingFingerprint fingerprint)
    {
        if (folder is null) return null;
        var digest = fingerprint.Digest();
        return new TrainingCheckpoint(System.IO.Path.Combine(folder, $"{stage}-{digest[..16]}.checkpoint"), interval, digest);
    }

    /// <summary>Reseeds the generator at interval boundaries; see the remarks.</summary>
    public void ReseedAt(int step, int seed)
    {
        if (step % Interval == 0) random.manual_seed(seed * 1_000_003L + step);
    }

    /// <summary>Whether the state after <paramref name="stepsDone"/> of <paramref name="totalSteps"/> steps is saved.</summary>
    public bool IsDue(int stepsDone, int totalSteps) => stepsDone % Interval == 0 || stepsDone == totalSteps;

    /// <summary>Writes the state after <paramref name="stepsDone"/> steps (a host sync, once per interval).</summary>
    public void Save(int stepsDone, nn.Module network, ExponentialMovingAverage? average, FlatOptimizer optimizer, IReadOnlyList<Tensor> algorithmState)
    {
        var manifest = new JsonObject
        {
            ["fingerprint"] = Fingerprint,
            ["stepsDone"] = stepsDone,
            ["emaUpdates"] = average?.Updates ?? 0,
            ["algorithmState"] = new JsonArray(algorithmState.Select(t => (JsonNode)new JsonArray(
                t.detach().cpu().to(ScalarType.Float64).data<double>().ToArray().Select(v => (JsonNode)JsonValue.Create(v)!).ToArray())).ToArray()),
        };
        var entries = new Dictionary<string, Action<Stream>>
        {
            ["network.bin"] = s => network.save(s),
            ["optimizer.bin"] = s =>
            {
                using var writer = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
                optimizer.SaveState(writer);
            },
        };
        if (average is not null) entries["average.bin"] = s => average.Average.save(s);
        ModelFile.Write(Path, Kind, FormatVersion, manifest, entries);
    }

    /// <summary>
    /// Loads the saved state into the given objects and returns the steps it had done; 0 when there is no file.
    /// A file of another run (other fingerprint) is an error rather than being overwritten silently.
    /// </summary>
    public int Restore(nn.Module network, ExponentialMovingAverage? average, FlatOptimizer optimizer, IReadOnlyList<Tensor> algorithmState)
    {
        if (!File.Exists(Path)) return 0;
        using var file = ModelFile.Open(Path, Kind, FormatVersion);
        var fingerprint = file.Get<string>("fingerprint");
        if (fingerprint != Fingerprint)
            throw file.Damaged($"it belongs to another training run (fingerprint {fingerprint[..16]}, expected {Fingerprint[..16]}); delete it to start afresh");
        file.LoadWeights(network, "network.bin", "network of this run");
        if (average is not null) file.LoadWeights(average.Average, "average.bin", "network of this run");
        using (var stream = file.ReadEntry("optimizer.bin"))
        using (var reader = new BinaryReader(stream))
            optimizer.LoadState(reader);
        var saved = file.Get<double[][]>("algorithmState");
        if (saved.Length != algorithmState.Count || saved.Zip(algorithmState).Any(p => p.First.Length != p.Second.numel()))
            throw file.Damaged("its algorithm state does not fit this run");
        using (no_grad())
            foreach (var (values, state) in saved.Zip(algorithmState))
                state.copy_(tensor(values).reshape(state.shape).to(state.dtype, state.device));
        if (average is not null) average.Updates = file.Get<long>("emaUpdates");
        return file.Get<int>("stepsDone");
    }

    /// <summary>A log line for a resumed run.</summary>
    public string Describe(int stepsDone, int totalSteps) => stepsDone >= totalSteps
        ? $"finished run found in checkpoint '{Path}' ({stepsDone.ToString(CultureInfo.InvariantCulture)} steps); not training again"
        : $"resuming from checkpoint '{Path}' at step {stepsDone.ToString(CultureInfo.InvariantCulture)} of {totalSteps.ToString(CultureInfo.InvariantCulture)}";
}
