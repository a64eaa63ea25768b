using static Microsoft.ML.Dpt.Training.OptionChecks;

namespace Microsoft.ML.Dpt.Training.SelfSupervised;

/// <summary>
/// SimCLR-style contrastive pretraining of a classifier's encoder on every row, labeled or not: two augmented views
/// of each image (random resized crop, flip, brightness and contrast jitter, done in batches on the device) pass
/// through the encoder and a projection head, and the NT-Xent loss pulls the two views of an image together and
/// pushes the other images of the batch away. No label is read. DPT's ImageNet recipe starts from such an encoder
/// (MSN) because FixMatch-style training collapses with one label per class.
/// </summary>
public sealed class ContrastivePretrainingOptions
{
    /// <summary>Optimiser steps. Default: 2000.</summary>
    public int NumberOfSteps { get; set; } = 2000;

    /// <summary>Images per step (each seen in two views, so the loss contrasts 2 x BatchSize). Default: 256.</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Peak AdamW learning rate (linear warm-up over the first 5% of steps, then cosine decay). Default: 2e-3.</summary>
    public double LearningRate { get; set; } = 2e-3;

    /// <summary>AdamW weight decay. Default: 1e-4.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Softmax temperature of NT-Xent. Default: 0.2.</summary>
    public double Temperature { get; set; } = 0.2;

    /// <summary>Output length of the projection head (discarded after pretraining). Default: 64.</summary>
    public int ProjectionLength { get; set; } = 64;

    /// <summary>Smallest fraction of the image area a random crop keeps. Default: 0.3.</summary>
    public double MinCropScale { get; set; } = 0.3;

    internal void Validate(string prefix)
    {
        Check(NumberOfSteps >= 1, prefix + nameof(NumberOfSteps), NumberOfSteps, "at least 1");
        Check(BatchSize >= 2, prefix + nameof(BatchSize), BatchSize, "at least 2 (the loss contrasts images of a batch)");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), prefix + nameof(LearningRate), LearningRate, "a positive number");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), prefix + nameof(WeightDecay), WeightDecay, "a non-negative number");
        Check(Temperature > 0 && double.IsFinite(Temperature), prefix + nameof(Temperature), Temperature, "a positive number");
        Check(ProjectionLength >= 1, prefix + nameof(ProjectionLength), ProjectionLength, "at least 1");
        Check(MinCropScale is > 0 and <= 1, prefix + nameof(MinCropScale), MinCropScale, "a fraction in (0, 1]");
    }
}
