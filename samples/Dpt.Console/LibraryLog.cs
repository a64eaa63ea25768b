using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Dpt.ConsoleApp;

/// <summary>
/// With --verbose, prints what the package's estimators report through <see cref="MLContext.Log"/> (the device chosen,
/// the label propagation's reach and seconds, the patch cache, the generated-image filter); without it, the console
/// prints only progress and results.
/// </summary>
internal static class LibraryLog
{
    // The package's estimators register these hosts; ML.NET's own components on the same context log far more.
    private static readonly string[] Sources = { "PseudoLabeler", "ConditionalDiffusionAugmenter", "DptClassifierTrainer" };

    /// <summary>A context seeded with <paramref name="seed"/> whose package messages go to the console when <paramref name="verbose"/>.</summary>
    public static MLContext NewContext(int seed, bool verbose)
    {
        var ml = new MLContext(seed);
        if (verbose) ml.Log += (_, e) =>
        {
            if (e.Kind is ChannelMessageKind.Info or ChannelMessageKind.Warning or ChannelMessageKind.Error && Sources.Any(e.Source.StartsWith))
                Console.WriteLine($"    [{e.Kind.ToString().ToLowerInvariant()}] {e.RawMessage}");
        };
        return ml;
    }
}
