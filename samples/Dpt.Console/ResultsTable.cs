using System.Text;
using System.Text.Json.Nodes;

namespace Dpt.ConsoleApp;

/// <summary>The main job's summary: one Markdown row per label count, read from its metrics.json object.</summary>
internal static class ResultsTable
{
    public static string Markdown(IEnumerable<JsonObject> runs)
    {
        var table = new StringBuilder()
            .AppendLine("| labels/class | supervised-only | stage 1 | pseudo-labels | stage 3 (DPT) | FD (floor) | CAS | faithful | fully supervised | seconds: stage 1 / 2 / 3 / all |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var m in runs)
        {
            table.AppendLine($"| {m["labelsPerClass"]} | {Percent(m, "supervisedOnly", "accuracy")} | {Percent(m, "stage1", "accuracy")} ({m["stage1"]?["algorithm"]}) | " +
                $"{Percent(m, "stage1", "pseudoLabelAccuracy")} | {Percent(m, "stage3", "accuracy")}{PairedZ(m)} | {Number(m, "stage2", "fd")} ({Number(m, "stage2", "fdFloor")}) | " +
                $"{Percent(m, "stage2", "cas")} | {Percent(m, "stage2", "faithful")} | {Percent(m, "fullySupervised", "accuracy")} | " +
                $"{Number(m, "stage1", "seconds", "F0")} / {Number(m, "stage2", "seconds", "F0")} / {Number(m, "stage3", "seconds", "F0")} / {m["totalSeconds"]!.GetValue<double>():F0} |");
        }
        return table.ToString();
    }

    /// <summary>Per-class shares in [0, 1] as whole percentages, space-separated, in class order (the console's "per class" lists).</summary>
    public static string PerClassPercent(IEnumerable<double> shares) => string.Join(" ", shares.Select(share => $"{100 * share:F0}"));

    /// <summary>Stage 3 against stage 1 on the same test images, as McNemar's z (" (z +1.57)"), or nothing without stage 3.</summary>
    private static string PairedZ(JsonObject m) =>
        m["stage3"]?["pairedWithStage1"]?["z"] is { } z ? $" (z {z.GetValue<double>():+0.00;-0.00})" : "";

    private static string Percent(JsonObject m, string part, string key) =>
        m[part]?[key] is { } v ? v.GetValue<double>().ToString("P2") : "–";

    private static string Number(JsonObject m, string part, string key, string format = "F3") =>
        m[part]?[key] is { } v ? v.GetValue<double>().ToString(format) : "–";
}
