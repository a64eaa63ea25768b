using Microsoft.ML.Runtime;

namespace Microsoft.ML.Dpt.Training;

/// <summary>Sends each progress report to the MLContext log (through a channel) and to the user's callback.</summary>
internal static class ProgressSink
{
    public static Action<TrainingProgress> Create(IChannel channel, Action<TrainingProgress>? callback) => progress =>
    {
        channel.Info(MessageSensitivity.None, progress.ToString());
        callback?.Invoke(progress);
    };
}
