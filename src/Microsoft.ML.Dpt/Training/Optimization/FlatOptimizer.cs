using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Optimization;

/// <summary>
/// An optimiser that updates all parameters of a module at once through its <see cref="FlatParameters"/>: each
/// step is a few kernels over one buffer however many tensors the module has, with no host synchronisation.
/// </summary>
internal abstract class FlatOptimizer
{
    /// <summary>Flattens <paramref name="module"/> (all of whose parameters must be trainable).</summary>
    protected FlatOptimizer(nn.Module module, double learningRate, double weightDecay)
    {
        if (learningRate < 0 || !double.IsFinite(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), $"The learning rate must be a non-negative number; got {learningRate}.");
        if (weightDecay < 0 || !double.IsFinite(weightDecay)) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"The weight decay must be a non-negative number; got {weightDecay}.");
        Flat = FlatParameters.Of(module);
        if (Flat.Parameters.Any(p => !p.requires_grad))
            throw new ArgumentException("Every parameter of the module must be trainable: a flat optimiser would decay frozen ones.", nameof(module));
        Flat.AttachGradients();
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>The parameters and gradients it updates.</summary>
    protected FlatParameters Flat { get; }

    /// <summary>The learning rate of the next step (schedules set it every step).</summary>
    public double LearningRate { get; set; }

    /// <summary>The weight decay.</summary>
    public double WeightDecay { get; }

    /// <summary>Steps taken so far (saved with the state).</summary>
    public long Steps { get; private set; }

    /// <summary>The optimiser's own tensors (moments, momentum), saved and restored with checkpoints.</summary>
    protected abstract IReadOnlyList<Tensor> State { get; }

    /// <summary>Zeroes all gradients with one kernel (never sets them to null: they are views into the buffer).</summary>
    public void ZeroGrad() => Flat.Gradients.zero_();

    /// <summary>Scales the gradients so that their global L2 norm is at most <paramref name="maxNorm"/>, on the
    /// device: the norm is never read by the host.</summary>
    public void ClipGradientNorm(double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var factor = (maxNorm / (Flat.Gradients.norm() + 1e-6)).clamp_max(1.0);
        Flat.Gradients.mul_(factor);
    }

    /// <summary>Updates the parameters from the current gradients.</summary>
    public void Step()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Update(Flat.Values, Flat.Gradients, Steps);
        Steps++;
    }

    /// <summary>The update rule, given the step's index (0 for the first).</summary>
    protected abstract void Update(Tensor values, Tensor gradients, long step);

    /// <summary>Writes the step count and the state tensors.</summary>
    public void SaveState(BinaryWriter writer)
    {
        writer.Write(Steps);
        foreach (var t in State) t.Save(writer);
    }

    /// <summary>Reads what <see cref="SaveState"/> wrote, into this optimiser's tensors.</summary>
    public void LoadState(BinaryReader reader)
    {
        Steps = reader.ReadInt64();
        foreach (var t in State) t.Load(reader);
    }
}
