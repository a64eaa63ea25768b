namespace Microsoft.ML.Dpt.Training;

/// <summary>A progress report from a training loop, sent every <c>LogInterval</c> steps and at the end.</summary>
/// <param name="Stage">Which training this is ("PseudoLabeler", ...).</param>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Mean total loss over the steps since the last report.</param>
/// <param name="SupervisedLoss">Mean cross-entropy on labeled rows over the same steps (NaN when no label is read, as in self-supervised pretraining).</param>
/// <param name="MaskRate">Mean fraction of unlabeled rows whose pseudo-label was used (NaN when supervised-only).</param>
/// <param name="LearningRate">Learning rate at the last step.</param>
/// <param name="ImagesPerSecond">Images (all views) processed per second since the last report.</param>
/// <param name="Elapsed">Time since training started.</param>
public sealed record TrainingProgress(string Stage, int Step, int TotalSteps, double Loss, double SupervisedLoss, double MaskRate,
    double LearningRate, double ImagesPerSecond, TimeSpan Elapsed)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Stage} step {Step}/{TotalSteps}: loss {Loss:F4}" + (double.IsNaN(SupervisedLoss) ? "" : $" (supervised {SupervisedLoss:F4}" +
        (double.IsNaN(MaskRate) ? "" : $", mask {MaskRate:P0}") + ")") + $", lr {LearningRate:G3}, {ImagesPerSecond:F0} img/s, {Elapsed.TotalSeconds:F1} s";
}
