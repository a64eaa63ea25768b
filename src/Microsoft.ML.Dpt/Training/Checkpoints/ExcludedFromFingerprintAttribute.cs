namespace Microsoft.ML.Dpt.Training.Checkpoints;

/// <summary>
/// Marks an option that <see cref="TrainingFingerprint"/> skips: one that does not change the weights training
/// produces (progress, device, what happens after training), so that changing it keeps a checkpoint valid, or one
/// the training loop fingerprints itself (the weights a fine-tuning run starts from).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class ExcludedFromFingerprintAttribute : Attribute
{
}
