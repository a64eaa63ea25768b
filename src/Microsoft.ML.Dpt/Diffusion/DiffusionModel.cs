using Microsoft.ML.Dpt.Models.Diffusion;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Diffusion;

/// <summary>
/// A denoiser network with its noise schedule and output parameterisation: turns the network's output into the
/// ε that samplers and guidance work with, and makes the training target.
/// </summary>
public sealed class DiffusionModel : IConditionalDenoiser
{
    /// <summary>Wraps <paramref name="network"/>.</summary>
    public DiffusionModel(DenoiserNetwork network, NoiseSchedule schedule, PredictionType prediction)
    {
        Network = network;
        Schedule = schedule;
        Prediction = prediction;
    }

    /// <summary>The network.</summary>
    public DenoiserNetwork Network { get; }
    /// <summary>The schedule it was trained with.</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>What the network predicts.</summary>
    public PredictionType Prediction { get; }

    /// <inheritdoc/>
    public long NullClass => Network.Classes;

    /// <inheritdoc/>
    public Tensor PredictNoise(Tensor noisy, int timestep, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var t = full(noisy.shape[0], (float)timestep, device: noisy.device);
        var output = Network.forward(noisy, t, labels);
        if (Prediction == PredictionType.Epsilon) return output.MoveToOuterDisposeScope();
        // v = √ᾱ ε − √(1−ᾱ) x₀ and x_t = √ᾱ x₀ + √(1−ᾱ) ε give ε = √ᾱ v + √(1−ᾱ) x_t.
        return (Schedule.SignalScale(timestep) * output + Schedule.NoiseScale(timestep) * noisy).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The training loss for clean images <paramref name="x0"/> (in [-1, 1]) at random steps: mean squared error of
    /// the network's output against ε or v.
    /// </summary>
    public Tensor Loss(Tensor x0, Tensor labels, Tensor timesteps, Tensor noise)
    {
        var (signal, noiseScale) = Scales(timesteps, x0.device, x0.dtype);
        var noisy = signal * x0 + noiseScale * noise;
        var output = Network.forward(noisy, timesteps.to(ScalarType.Float32), labels);
        var target = Prediction == PredictionType.Epsilon ? noise : signal * noise - noiseScale * x0;
        return nn.functional.mse_loss(output, target);
    }

    private Tensor? _alphaBar;

    private (Tensor Signal, Tensor Noise) Scales(Tensor timesteps, Device device, ScalarType dtype)
    {
        // ᾱ as a device tensor, made once, so a training step copies nothing from the host.
        if (_alphaBar is null || _alphaBar.device != device)
            _alphaBar = tensor(Enumerable.Range(0, Schedule.Steps).Select(t => (float)Schedule.AlphaBar(t)).ToArray(), device: device).DetachFromDisposeScope();
        // Computed in fp32, then cast to the images' precision, so that a bf16 network gets bf16 inputs.
        var selected = _alphaBar.index_select(0, timesteps).view(-1, 1, 1, 1);
        return (selected.sqrt().to(dtype), (1 - selected).sqrt().to(dtype));
    }
}
