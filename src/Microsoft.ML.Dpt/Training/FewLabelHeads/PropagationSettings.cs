namespace Microsoft.ML.Dpt.Training.FewLabelHeads;

/// <summary>How label propagation builds its graph and reads its result (from <see cref="SemiSupervisedTrainerOptions"/>).</summary>
/// <param name="Neighbors">Neighbours per image in the graph.</param>
/// <param name="PixelWeight">Weight of the pixels beside the features in the graph's similarity (0: features only).</param>
/// <param name="GradientWeight">Weight of the images' <see cref="Models.OrientationHistograms"/> in that similarity (0: none).</param>
/// <param name="BalanceClasses">Whether each class takes its share of the labeled rows among the propagated ones.</param>
/// <param name="LearnMetric">Whether the labels are spread a second time over features whitened by the first pass's classes.</param>
/// <param name="PatchWeight">Weight of the images' <see cref="Models.PatchDictionary"/> descriptors in that similarity (0: none).</param>
internal sealed record PropagationSettings(int Neighbors, double PixelWeight, double GradientWeight, bool BalanceClasses, bool LearnMetric = false, double PatchWeight = 0)
{
    /// <summary>The settings that <paramref name="options"/> ask for.</summary>
    public static PropagationSettings From(SemiSupervisedTrainerOptions options) =>
        new(options.PropagationNeighbors, options.PropagationPixelWeight, options.PropagationGradientWeight, options.PropagationBalancesClasses,
            options.PropagationLearnsMetric, options.PropagationPatchWeight);
}
