using System.Text.Json.Nodes;
using Microsoft.ML.Dpt.Data;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// How many generated images of each class stage 3 received from stage 2, how many of those its filter kept, and how
/// many it trained on (after <see cref="DptClassifierTrainer.Options.GeneratedImagesPerClass"/> took its share).
/// Each list has one count per class, in the order of the label's key values.
/// </summary>
/// <param name="Received">Generated images that came with the input, per class.</param>
/// <param name="Kept">Those the filter assigned to their own class with enough probability, per class; without a filter, all received.</param>
/// <param name="Used">Those added to stage 3's labeled set, per class (none of a class below
/// <see cref="DptClassifierTrainer.Options.GeneratedClassMinimumPassRate"/>).</param>
public sealed record GeneratedImageCounts(IReadOnlyList<int> Received, IReadOnlyList<int> Kept, IReadOnlyList<int> Used)
{
    /// <summary>Generated images received, all classes together.</summary>
    public int TotalReceived => Received.Sum();

    /// <summary>Generated images the filter kept, all classes together.</summary>
    public int TotalKept => Kept.Sum();

    /// <summary>Generated images stage 3 trained on, all classes together.</summary>
    public int TotalUsed => Used.Sum();

    /// <summary>Counts each class's images in <paramref name="images"/>.</summary>
    internal static int[] PerClass(ImageDataset images)
    {
        var counts = new int[images.ClassNames.Count];
        foreach (int label in images.Labels) counts[label]++;
        return counts;
    }

    internal JsonObject ToJson() => new()
    {
        ["received"] = Array(Received), ["kept"] = Array(Kept), ["used"] = Array(Used),
    };

    /// <summary>
    /// Reads what <see cref="ToJson"/> wrote; null when <paramref name="node"/> is not an object of three lists of
    /// non-negative whole numbers, one per class each.
    /// </summary>
    internal static GeneratedImageCounts? FromJson(JsonNode? node)
    {
        int[]? Counts(string key)
        {
            if ((node as JsonObject)?[key] is not JsonArray values) return null;
            var counts = new int[values.Count];
            for (int i = 0; i < counts.Length; i++)
                if (values[i] is not JsonValue value || !value.TryGetValue(out counts[i]) || counts[i] < 0) return null;
            return counts;
        }
        var (received, kept, used) = (Counts("received"), Counts("kept"), Counts("used"));
        bool whole = received is not null && kept is not null && used is not null && kept.Length == received.Length && used.Length == received.Length;
        return whole ? new GeneratedImageCounts(received!, kept!, used!) : null;
    }

    private static JsonArray Array(IReadOnlyList<int> counts) => new(counts.Select(c => (JsonNode)c).ToArray());
}
