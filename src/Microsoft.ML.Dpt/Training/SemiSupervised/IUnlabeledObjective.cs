using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.SemiSupervised;

/// <summary>
/// The unlabeled part of a semi-supervised loss: given the model's logits on the weak and strong views of a
/// batch of unlabeled images, returns a scalar loss to add to the supervised one. Implementations keep whatever
/// state they need (thresholds, class priors) on the device, so no step waits for the host.
/// </summary>
internal interface IUnlabeledObjective
{
    /// <summary>The loss for one batch. <paramref name="weakLogits"/> carries no gradient.</summary>
    Tensor Loss(Tensor weakLogits, Tensor strongLogits);

    /// <summary>Fraction of the last batch whose pseudo-label passed the threshold (a device scalar).</summary>
    Tensor? LastMaskRate { get; }

    /// <summary>The state that carries over between steps (thresholds, class statistics), for checkpoints; empty when none.</summary>
    IReadOnlyList<Tensor> State { get; }
}
