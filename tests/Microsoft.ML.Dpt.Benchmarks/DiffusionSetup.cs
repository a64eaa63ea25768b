using Microsoft.ML.Dpt.Diffusion;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Diffusion;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Benchmarks;

/// <summary>A denoiser in training mode with its EMA copy, noise schedule and optimiser, as the training loop builds them.</summary>
internal sealed class DiffusionSetup : IDisposable
{
    public DiffusionSetup(DenoiserSpec spec, Device device, ScalarType precision)
    {
        random.manual_seed(1);
        Network = DenoiserNetwork.Create(spec);
        AverageNetwork = DenoiserNetwork.Create(spec);
        Network.to(device, precision);
        AverageNetwork.to(device, precision);
        Average = new ExponentialMovingAverage(Network, AverageNetwork, Options.EmaDecay);
        Model = new DiffusionModel(Network, NoiseSchedule.Create(Options.Schedule, Options.ScheduleSteps), Options.Prediction);
        Optimizer = new FlatAdamW(Network, Options.LearningRate, Options.WeightDecay);
        Network.train();
    }

    public DiffusionTrainerOptions Options { get; } = new();
    public DenoiserNetwork Network { get; }
    public DenoiserNetwork AverageNetwork { get; }
    public ExponentialMovingAverage Average { get; }
    public DiffusionModel Model { get; }
    public FlatAdamW Optimizer { get; }

    public void Dispose()
    {
        Network.Dispose();
        AverageNetwork.Dispose();
    }
}
