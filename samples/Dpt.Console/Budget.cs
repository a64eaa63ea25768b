using Microsoft.ML.Dpt.Models.Diffusion;

namespace Dpt.ConsoleApp;

/// <summary>
/// The training budget of a preset, in one place: quick fits all three stages in minutes on 2 CPU cores, full is
/// the benchmark budget meant for a GPU. Command-line options override single numbers.
/// </summary>
internal sealed record Budget(
    int TrainImages, int ClassifierSteps, int ClassifierBatch, int UnlabeledRatio, int ClassifierWidth,
    DenoiserSize DenoiserSize, int DiffusionSteps, int DiffusionBatch, double DiffusionLearningRate,
    int ReferenceSteps, int CasSteps, int EvaluationImages, int SamplingBenchmarkImages, int PretrainingSteps, int PretrainingBatch)
{
    public static Budget For(CommandLine args, int availableTrainImages)
    {
        var preset = args.Preset == Preset.Quick
            ? new Budget(6000, 1500, 32, 3, 16, DenoiserSize.Tiny, 1500, 64, 1e-3, 1500, 1000, 2000, 100, 300, 256)
            : new Budget(availableTrainImages, 5000, 64, 7, 32, DenoiserSize.Small, 4000, 256, 2e-4, 4000, 3000, 2000, 1000, 5000, 512);
        return preset with
        {
            TrainImages = Math.Min(args.TrainImages ?? preset.TrainImages, availableTrainImages),
            ClassifierSteps = args.Steps ?? preset.ClassifierSteps,
            ClassifierWidth = args.Width ?? preset.ClassifierWidth,
            ReferenceSteps = args.Steps ?? preset.ReferenceSteps,
            CasSteps = args.Steps ?? preset.CasSteps,
            DiffusionSteps = args.DiffusionSteps ?? preset.DiffusionSteps,
            PretrainingSteps = args.PretrainingSteps ?? preset.PretrainingSteps,
            EvaluationImages = args.EvaluationImages ?? preset.EvaluationImages,
            SamplingBenchmarkImages = Math.Min(preset.SamplingBenchmarkImages, args.EvaluationImages ?? preset.SamplingBenchmarkImages),
        };
    }
}
