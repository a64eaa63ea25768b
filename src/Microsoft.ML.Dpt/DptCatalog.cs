using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.SemiSupervised;

namespace Microsoft.ML.Dpt;

/// <summary>Adds <see cref="Dpt"/> to <see cref="MLContext"/>.</summary>
public static class MLContextDptExtensions
{
    /// <summary>The Dual Pseudo Training catalog: stage estimators, data helpers and loaders.</summary>
    public static DptCatalog Dpt(this MLContext mlContext) => new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));
}

/// <summary>
/// Dual Pseudo Training (You et al., NeurIPS 2023) for ML.NET: a semi-supervised classifier pseudo-labels the
/// data (stage 1), a class-conditional diffusion model learns from those labels and generates pseudo images
/// (stage 2), and the classifier is retrained on real plus pseudo images (stage 3).
/// </summary>
public sealed class DptCatalog
{
    internal DptCatalog(MLContext mlContext)
    {
        MLContext = mlContext;
        Data = new DptDataCatalog(mlContext);
    }

    /// <summary>The context whose seed and log the components use.</summary>
    public MLContext MLContext { get; }

    /// <summary>Readers and splits for image data.</summary>
    public DptDataCatalog Data { get; }

    /// <summary>Stage 1: a semi-supervised classifier that pseudo-labels every row.</summary>
    public PseudoLabeler PseudoLabeler(PseudoLabeler.Options options) => new(MLContext, options);

    /// <summary>Stage 1 with default options except those named.</summary>
    /// <param name="labelColumnName">Key-typed label column; a missing key marks an unlabeled row.</param>
    /// <param name="imageColumnName">Image column: float vector [C, H, W] in [0, 1] or MLImage.</param>
    /// <param name="algorithm">How unlabeled rows are used.</param>
    /// <param name="numberOfSteps">Optimiser steps.</param>
    public PseudoLabeler PseudoLabeler(string labelColumnName = DefaultColumnNames.Label, string imageColumnName = DefaultColumnNames.Image,
        SemiSupervisedAlgorithm algorithm = SemiSupervisedAlgorithm.FreeMatch, int numberOfSteps = 2000) =>
        new(MLContext, new PseudoLabeler.Options
        {
            LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Algorithm = algorithm, NumberOfSteps = numberOfSteps,
        });

    /// <summary>Stage 2: a class-conditional diffusion model trained on (pseudo-)labels that generates images per class.</summary>
    public ConditionalDiffusionAugmenter ConditionalDiffusionAugmenter(ConditionalDiffusionAugmenter.Options options) => new(MLContext, options);

    /// <summary>Stage 2 with default options except those named.</summary>
    /// <param name="labelColumnName">Key column that conditions the model (stage 1's pseudo-label by default).</param>
    /// <param name="imageColumnName">Image column.</param>
    /// <param name="numberOfSteps">Training steps.</param>
    /// <param name="imagesPerClass">Images generated per class for stage 3.</param>
    public ConditionalDiffusionAugmenter ConditionalDiffusionAugmenter(string labelColumnName = DefaultColumnNames.PseudoLabel,
        string imageColumnName = DefaultColumnNames.Image, int numberOfSteps = 5000, int imagesPerClass = 100) =>
        new(MLContext, new ConditionalDiffusionAugmenter.Options
        {
            LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, NumberOfSteps = numberOfSteps, ImagesPerClass = imagesPerClass,
        });

    /// <summary>Stage 3: the classifier retrained on the real rows plus the images stage 2 generated.</summary>
    public DptClassifierTrainer DptClassifierTrainer(DptClassifierTrainer.Options options) => new(MLContext, options);

    /// <summary>Stage 3 with default options except those named.</summary>
    /// <param name="labelColumnName">Key-typed label column of the real rows (missing key = unlabeled).</param>
    /// <param name="imageColumnName">Image column.</param>
    /// <param name="algorithm">Semi-supervised algorithm (stage 1's, by the paper's recipe).</param>
    /// <param name="numberOfSteps">Optimiser steps.</param>
    public DptClassifierTrainer DptClassifierTrainer(string labelColumnName = DefaultColumnNames.Label, string imageColumnName = DefaultColumnNames.Image,
        SemiSupervisedAlgorithm algorithm = SemiSupervisedAlgorithm.FreeMatch, int numberOfSteps = 2000) =>
        new(MLContext, new DptClassifierTrainer.Options
        {
            LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Algorithm = algorithm, NumberOfSteps = numberOfSteps,
        });

    /// <summary>
    /// The whole method in one call: PseudoLabeler → ConditionalDiffusionAugmenter → DptClassifierTrainer, the same
    /// chain as appending the three by hand. Reach the fitted stages with <see cref="DualPseudoTrainingModel"/>.
    /// </summary>
    public EstimatorChain<DptClassifierTransformer> DualPseudoTraining(DualPseudoTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Stage2.LabelColumnName != options.Stage1.PseudoLabelColumnName)
            throw new ArgumentException($"Stage2.LabelColumnName is '{options.Stage2.LabelColumnName}' but stage 1 writes its pseudo-labels to '{options.Stage1.PseudoLabelColumnName}'; DPT conditions stage 2 on them.", nameof(options));
        options.Stage1.CheckpointFolder ??= options.CheckpointFolder;
        options.Stage2.CheckpointFolder ??= options.CheckpointFolder;
        options.Stage3.CheckpointFolder ??= options.CheckpointFolder;
        return PseudoLabeler(options.Stage1).Append(ConditionalDiffusionAugmenter(options.Stage2)).Append(DptClassifierTrainer(options.Stage3));
    }

    /// <summary>Loads a stage-3 model saved with <see cref="DptClassifierTransformer.Save"/>.</summary>
    public DptClassifierTransformer LoadDptClassifier(string path, DptDevice device = DptDevice.Auto) => DptClassifierTransformer.Load(path, device);

    /// <summary>Loads a generator saved with <see cref="Diffusion.ConditionalGenerator.Save"/>.</summary>
    public Diffusion.ConditionalGenerator LoadGenerator(string path, DptDevice device = DptDevice.Auto) => Diffusion.ConditionalGenerator.Load(path, device);

    /// <summary>Loads a stage-1 model saved with <see cref="PseudoLabelerTransformer.Save"/>.</summary>
    public PseudoLabelerTransformer LoadPseudoLabeler(string path, DptDevice device = DptDevice.Auto) => PseudoLabelerTransformer.Load(path, device);
}

/// <summary>Data helpers: IDX files, image folders, Fashion-MNIST, and the few-label split.</summary>
public sealed class DptDataCatalog
{
    private readonly MLContext _mlContext;

    internal DptDataCatalog(MLContext mlContext) => _mlContext = mlContext;

    /// <summary>Reads an MNIST/IDX pair (gzip or raw) as an <see cref="IDataView"/> with "Image" (vector [1, H, W]) and "Label" (key).</summary>
    public IDataView LoadIdx(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null) =>
        IdxDataset.Read(imagesPath, labelsPath, classNames).ToDataView(_mlContext);

    /// <summary>Reads Fashion-MNIST (a folder, the Debian install, or the embedded subset; see <see cref="FashionMnist.Locate"/>).</summary>
    public (IDataView Train, IDataView Test) LoadFashionMnist(string? folder = null)
    {
        var (train, test) = FashionMnist.Load(folder);
        return (train.ToDataView(_mlContext), test.ToDataView(_mlContext));
    }

    /// <summary>Reads a folder of images, one subfolder per class plus an optional unlabeled subfolder.</summary>
    public IDataView LoadImageFolder(string folder, ImageFolderSource.Options? options = null) =>
        ImageFolderSource.Read(folder, options).ToDataView(_mlContext);

    /// <summary>Keeps <paramref name="labelsPerClass"/> labels per class (stratified, seeded) and marks the other rows unlabeled.</summary>
    public IDataView KeepLabelsPerClass(IDataView data, int labelsPerClass, int seed, string labelColumnName = DefaultColumnNames.Label) =>
        FewLabelSplit.Apply(data, labelsPerClass, seed, labelColumnName);
}
