using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Diffusion;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>Options of the whole method: one options object per stage.</summary>
public sealed class DualPseudoTrainingOptions
{
    /// <summary>Stage 1: the semi-supervised classifier that pseudo-labels every row.</summary>
    public PseudoLabeler.Options Stage1 { get; set; } = new();

    /// <summary>Stage 2: the conditional diffusion model, conditioned on stage 1's <c>PseudoLabel</c> column.</summary>
    public ConditionalDiffusionAugmenter.Options Stage2 { get; set; } = new();

    /// <summary>Stage 3: the classifier retrained on real rows plus generated images (the paper's recipe: stage 1's algorithm, from scratch).</summary>
    public DptClassifierTrainer.Options Stage3 { get; set; } = new();

    /// <summary>
    /// Folder for the checkpoints of all three stages; given to each stage whose own <c>CheckpointFolder</c> is null.
    /// A run stopped in stage 2 and started again with the same options and data loads stage 1 from there instead of
    /// retraining it, and continues stage 2 from its last checkpoint. Default: null (no checkpoints).
    /// </summary>
    public string? CheckpointFolder { get; set; }
}

/// <summary>Reaches the stages of a fitted DPT chain, however it was built (one call or <c>Append</c> by hand).</summary>
public static class DualPseudoTrainingModel
{
    /// <summary>Stage 1's fitted pseudo-labeler.</summary>
    public static PseudoLabelerTransformer PseudoLabeler(this TransformerChain<DptClassifierTransformer> model) => Find<PseudoLabelerTransformer>(model);

    /// <summary>Stage 2's generator.</summary>
    public static ConditionalGenerator Generator(this TransformerChain<DptClassifierTransformer> model) => Find<ConditionalDiffusionTransformer>(model).Generator;

    /// <summary>Stage 3's final classifier.</summary>
    public static DptClassifierTransformer FinalClassifier(this TransformerChain<DptClassifierTransformer> model) => model.LastTransformer;

    private static T Find<T>(TransformerChain<DptClassifierTransformer> model) where T : class, ITransformer =>
        model.OfType<T>().SingleOrDefault() ?? throw new InvalidOperationException($"The model has no {typeof(T).Name}; it is not a DPT chain.");
}
