using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Training.Optimization;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// One optimiser step of the conditional diffusion model: optional flip, labels dropped to the null class with
/// probability <c>ConditionDropout</c>, a uniformly drawn timestep per image, the ε/v loss, AdamW with global-norm
/// clipping on the device (both over the flat parameter buffer: a few kernels, not a few per tensor), EMA. The body of <see cref="DiffusionTrainingLoop"/>, kept apart so that the benchmark
/// times exactly what training runs. The caller owns the dispose scope.
/// </summary>
internal sealed class DiffusionTrainingStep
{
    private readonly DiffusionModel _model;
    private readonly FlatAdamW _optimizer;
    private readonly ExponentialMovingAverage _average;
    private readonly DiffusionTrainerOptions _options;
    private readonly int _nullClass;

    public DiffusionTrainingStep(DiffusionModel model, FlatAdamW optimizer, ExponentialMovingAverage average, DiffusionTrainerOptions options, int classes)
    {
        _model = model;
        _optimizer = optimizer;
        _average = average;
        _options = options;
        _nullClass = classes;
    }

    /// <summary>Runs the step on clean images <c>x0</c> in [-1, 1] and their labels; returns the loss (a device scalar).</summary>
    public Tensor Run(Tensor x0, Tensor labels, double learningRate)
    {
        _optimizer.LearningRate = learningRate;
        long batch = x0.shape[0];
        var device = x0.device;
        if (_options.HorizontalFlip)
            x0 = where(rand(batch, 1, 1, 1, device: device) < 0.5, x0.flip(3), x0);
        var y = where(rand(batch, device: device) < _options.ConditionDropout, full_like(labels, _nullClass), labels);
        var t = randint(_model.Schedule.Steps, new long[] { batch }, device: device);
        var loss = _model.Loss(x0, y, t, randn_like(x0));
        _optimizer.ZeroGrad();
        loss.backward();
        _optimizer.ClipGradientNorm(_options.GradientClipNorm);
        _optimizer.Step();
        _average.Update();
        return loss.detach();
    }
}
