using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using Microsoft.ML.Dpt.Training.Optimization;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// One optimiser step of a classifier: weak view of the labeled batch, weak and strong views of the unlabeled batch
/// in one forward pass (as in FixMatch), weighted cross-entropy plus the algorithm's unlabeled loss, SGD, EMA. The
/// body of <see cref="ClassifierTrainingLoop"/>, kept apart so that the benchmark times exactly what training runs.
/// The caller owns the dispose scope.
/// </summary>
internal sealed class ClassifierTrainingStep
{
    private readonly ImageClassifierNetwork _network;
    private readonly ExponentialMovingAverage _average;
    private readonly FlatSgd _optimizer;
    private readonly Augmentation _augmentation;
    private readonly IUnlabeledObjective? _objective;
    private readonly double _unlabeledLossWeight;

    public ClassifierTrainingStep(ImageClassifierNetwork network, ExponentialMovingAverage average, FlatSgd optimizer,
        Augmentation augmentation, IUnlabeledObjective? objective, double unlabeledLossWeight)
    {
        _network = network;
        _average = average;
        _optimizer = optimizer;
        _augmentation = augmentation;
        _objective = objective;
        _unlabeledLossWeight = unlabeledLossWeight;
    }

    /// <summary>Runs the step and returns [total loss, supervised loss, mask rate] as one device tensor (no host sync).</summary>
    /// <param name="labeledImages">Labeled batch <c>[B, C, H, W]</c> in [0, 1], not yet augmented.</param>
    /// <param name="targets">Their classes.</param>
    /// <param name="weights">Their weights in the supervised loss (1 for real images).</param>
    /// <param name="unlabeledImages">Unlabeled batch, or null for supervised-only.</param>
    /// <param name="learningRate">This step's learning rate.</param>
    public Tensor Run(Tensor labeledImages, Tensor targets, Tensor weights, Tensor? unlabeledImages, double learningRate)
    {
        _optimizer.LearningRate = learningRate;
        var labeledView = _augmentation.Weak(labeledImages);
        Tensor WeightedCrossEntropy(Tensor logits) =>
            (nn.functional.cross_entropy(logits, targets, reduction: nn.Reduction.None) * weights).sum() / weights.sum().clamp_min(1e-12);
        Tensor loss, supervised, maskRate;
        if (_objective is null || unlabeledImages is null)
        {
            supervised = WeightedCrossEntropy(_network.forward(labeledView));
            loss = supervised;
            maskRate = zeros(1, device: labeledImages.device);
        }
        else
        {
            long batch = labeledImages.shape[0], unlabeledBatch = unlabeledImages.shape[0];
            var logits = _network.forward(cat(new[] { labeledView, _augmentation.Weak(unlabeledImages), _augmentation.Strong(unlabeledImages) }));
            var parts = logits.split(new long[] { batch, unlabeledBatch, unlabeledBatch });
            supervised = WeightedCrossEntropy(parts[0]);
            var unsupervised = _objective.Loss(parts[1].detach(), parts[2]);
            loss = supervised + _unlabeledLossWeight * unsupervised;
            maskRate = _objective.LastMaskRate!;
        }
        _optimizer.ZeroGrad();
        loss.backward();
        _optimizer.Step();
        _average.Update();
        using (no_grad())
            return stack(new[] { loss.detach().reshape(1), supervised.detach().reshape(1), maskRate.reshape(1) }).flatten();
    }
}
