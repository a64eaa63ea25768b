using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Encoders;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Microsoft.ML.Dpt.Training.SelfSupervised;
using Microsoft.ML.Dpt.Training.SemiSupervised;

using static Microsoft.ML.Dpt.Training.OptionChecks;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// Settings shared by the trainers that fit a semi-supervised image classifier (stage 1 and stage 3).
/// The defaults follow USB's FixMatch/FreeMatch recipes, with fewer steps.
/// </summary>
public class SemiSupervisedTrainerOptions
{
    /// <summary>Image column: a float vector of C*H*W values in [0, 1] (with dimensions C, H, W) or an MLImage. Default: "Image".</summary>
    public string ImageColumnName { get; set; } = DefaultColumnNames.Image;

    /// <summary>Label column: a key type; rows with a missing key are unlabeled. Default: "Label".</summary>
    public string LabelColumnName { get; set; } = DefaultColumnNames.Label;

    /// <summary>How unlabeled rows are used. Default: <see cref="SemiSupervisedAlgorithm.FreeMatch"/>.</summary>
    public SemiSupervisedAlgorithm Algorithm { get; set; } = SemiSupervisedAlgorithm.FreeMatch;

    /// <summary>Network architecture. Default: <see cref="ClassifierNetwork.SmallCnn"/>.</summary>
    public ClassifierNetwork Network { get; set; } = ClassifierNetwork.SmallCnn;

    /// <summary>Network width: first-stage channels of the small CNN (default 32) or the WRN's widen factor (default 2). Null: the network's default.</summary>
    public int? NetworkWidth { get; set; }

    /// <summary>Optimiser steps. Default: 2,000.</summary>
    public int NumberOfSteps { get; set; } = 2000;

    /// <summary>Labeled images per step. Default: 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Unlabeled images per labeled image in a step (μ in FixMatch). Default: 7.</summary>
    public int UnlabeledRatio { get; set; } = 7;

    /// <summary>Initial learning rate of SGD; it decays as cos(7πk / 16K). Default: 0.03.</summary>
    public double LearningRate { get; set; } = 0.03;

    /// <summary>SGD momentum (Nesterov). Default: 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>L2 weight decay. Default: 5e-4.</summary>
    public double WeightDecay { get; set; } = 5e-4;

    /// <summary>Decay of the exponential moving average of the weights that predictions use. Default: 0.999.</summary>
    public double EmaDecay { get; set; } = 0.999;

    /// <summary>Weight of the unlabeled loss (λ_u). Default: 1.</summary>
    public double UnlabeledLossWeight { get; set; } = 1.0;

    /// <summary>FixMatch's confidence threshold for a pseudo-label. Default: 0.95.</summary>
    public double ConfidenceThreshold { get; set; } = 0.95;

    /// <summary>FreeMatch's EMA momentum for its thresholds and class statistics. Default: 0.999.</summary>
    public double FreeMatchMomentum { get; set; } = 0.999;

    /// <summary>FreeMatch's self-adaptive fairness weight (λ_f). Default: 0.001.</summary>
    public double FairnessWeight { get; set; } = 0.001;

    /// <summary>Augmentations that suit the data (flip, translation, Cutout size). Default: flips allowed, 12.5% shifts, Cutout up to half the side.</summary>
    public AugmentationPolicy Augmentation { get; set; } = new();

    /// <summary>Channels to read from an MLImage column (1: luma, 3: RGB). Default: 3.</summary>
    public int MLImageChannels { get; set; } = 3;

    /// <summary>
    /// Self-supervised pretraining of the encoder on every row before the classifier is fitted; null for none.
    /// With <see cref="Head"/> = <see cref="FewLabelHead.FineTune"/> the semi-supervised training starts from the
    /// pretrained weights; with a frozen head the head reads the pretrained features. Default: null.
    /// </summary>
    public ContrastivePretrainingOptions? Pretraining { get; set; }

    /// <summary>
    /// How the classifier is fitted on the labels: the whole network with <see cref="Algorithm"/>, or a head on the
    /// frozen features of a pretrained encoder (from <see cref="Pretraining"/>, or stage 3's <c>StartFrom</c>).
    /// Default: <see cref="FewLabelHead.FineTune"/>.
    /// </summary>
    public FewLabelHead Head { get; set; } = FewLabelHead.FineTune;

    /// <summary>
    /// A pretrained ONNX encoder (such as <see cref="OnnxImageEncoder.ResNet18"/>) whose frozen features the head
    /// reads instead of a network trained here; needs <see cref="Head"/> = <see cref="FewLabelHead.LogisticRegression"/>,
    /// <see cref="FewLabelHead.NearestClassMean"/> or <see cref="FewLabelHead.LabelPropagation"/> and no <see cref="Pretraining"/>. The encoder is saved with the
    /// model. Default: null.
    /// </summary>
    [ExcludedFromFingerprint]   // never trained by a checkpointed loop
    public OnnxImageEncoder? Encoder { get; set; }

    /// <summary>
    /// L2 regularisation of the <see cref="FewLabelHead.LogisticRegression"/> and <see cref="FewLabelHead.LabelPropagation"/>
    /// heads (and of the head that <see cref="PropagateAfterFineTuning"/> fits); setting it for settings that fit no such
    /// head is an error (<see cref="FitsLogisticRegressionHead"/>), since it would be ignored. Default: 0.01.
    /// </summary>
    public double HeadL2Regularization
    {
        get => headL2Regularization ?? 0.01;
        set => headL2Regularization = value;
    }

    /// <summary>Null until <see cref="HeadL2Regularization"/> is set, so that a value set for a head that ignores it is refused.</summary>
    private double? headL2Regularization;

    /// <summary>Neighbours per image in the graph of the <see cref="FewLabelHead.LabelPropagation"/> head. Default: 10.</summary>
    [ExcludedFromFingerprint]   // its effect reaches training only through the extra labeled rows, which are fingerprinted
    public int PropagationNeighbors { get; set; } = 10;

    /// <summary>
    /// Weight of the pixels in the similarity of the label-propagation graph (<see cref="FewLabelHead.LabelPropagation"/>
    /// and <see cref="PropagatedLabelFraction"/>): each image is described by its centred, L2-normalised features and
    /// its centred, L2-normalised pixels times this weight, joined and normalised again; at 1 both count equally, at 0
    /// the graph reads the features alone. On Fashion-MNIST a CPU-budget contrastive encoder's nearest neighbours
    /// share their class less often than the pixels' do (79.6 % against 82.3 % of 10 neighbours) and the two together
    /// most often (83.9 %). Default: 1.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public double PropagationPixelWeight { get; set; } = 1.0;

    /// <summary>
    /// Weight of the images' histograms of oriented gradients (edge directions per 4 × 4-pixel cell, after Dalal and
    /// Triggs 2005) in the similarity of the label-propagation graph, joined like <see cref="PropagationPixelWeight"/>;
    /// 0 leaves them out. A fixed descriptor that needs no training: on Fashion-MNIST an image's 10 nearest neighbours
    /// by it share its class 86.3 % of the time, more than by pixels (82.3 %) or by a CPU-budget contrastive encoder
    /// (79.6 %), and at weight 1 propagation over that encoder's features and the pixels gets 2 to 3 points more rows
    /// right (seed 1). What reaches the classifier varies with the labels drawn: at one label per class the
    /// propagation head gained 2.3 points for seed 1 and lost 0.4 for seed 2, and propagation-freematch-propagation at
    /// four labels gained nothing (docs/results.md), so it is off unless asked for. Default: 0.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public double PropagationGradientWeight { get; set; }

    /// <summary>
    /// Weight of a descriptor learnt from the images without labels (<c>PatchDictionary</c>: k-means over whitened 5 × 5
    /// patches, Coates, Lee and Ng 2011, with 400 patch shapes pooled over a 2 × 2 grid) in the similarity of the
    /// label-propagation graph, joined like <see cref="PropagationPixelWeight"/>; 0 leaves it out. The dictionary is fitted
    /// to the real images and only shapes the graph, so the saved model needs nothing more; it and the real images'
    /// descriptors are kept for the next propagation over the same images in the process (stage 3's graph, another label
    /// count), which then describes only the generated images. On full Fashion-MNIST an image's 10 nearest neighbours by it
    /// and the orientation histograms share its class 87.1 % of the time, against 86.0 % by a CPU-budget contrastive
    /// encoder and the same histograms. At weight 1 beside such an encoder and the histograms it raised four-label stage 1
    /// on three label draws from 79.56, 78.32 and 77.86 % to 80.15, 79.46 and 78.69 %, and one-label stage 1 from 75.18,
    /// 62.37 and 43.19 % to 75.62, 67.72 and 43.56 % (docs/results.md). It costs time: on two CPU cores about 8 to 11 more
    /// minutes for the first propagation over 60,000 28 × 28 images, which is why it is off unless asked for (the sample
    /// console sets it to 1). Default: 0.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public double PropagationPatchWeight { get; set; }

    /// <summary>
    /// Weight of the images' histograms of oriented gradients beside the encoder's features in a frozen-feature head
    /// (<see cref="FewLabelHead.LogisticRegression"/>, <see cref="FewLabelHead.NearestClassMean"/>,
    /// <see cref="FewLabelHead.LabelPropagation"/>, and the head that <see cref="PropagateAfterFineTuning"/> fits): the
    /// head reads both, each centred and L2-normalised, joined with this weight on the histograms and normalised again;
    /// at 0 it reads the features alone. The histograms are computed from the pixels whenever the model scores, so the
    /// saved model needs nothing more. Unlike <see cref="PropagationGradientWeight"/>, which only shapes the graph that
    /// finds the pseudo-labels, this lets the classifier itself see the edges. On full Fashion-MNIST weight 1 raised
    /// stage 1 in all five pairs measured (+0.06 to +0.94 points, at one and four labels per class, two seeds) and
    /// the whole method's stage 3 by 1.08 (docs/results.md). It is off by default because the histograms hold
    /// 9 × ⌈H/4⌉ × ⌈W/4⌉ numbers (441 at 28 × 28, 28,224 at 224 × 224): for large photographs the head would be
    /// fitted on far more histogram numbers than features. The console turns it on. Default: 0.
    /// </summary>
    [ExcludedFromFingerprint]   // the head is fitted after every checkpointed loop
    public double HeadGradientWeight { get; set; }

    /// <summary>
    /// Cells per side of a grid over which frozen-feature heads and label propagation also read the encoder's last
    /// feature map (<see cref="ImageClassifierNetwork.GridFeatures"/>): each image is described by its globally pooled
    /// features followed by that map averaged over G × G cells, so that the description says where things are, not
    /// only what they are (Fashion-MNIST's items are centred and upright, and the pixels and histograms already
    /// showed that layout matters). 0 reads the pooled features alone. It applies wherever frozen features are read:
    /// the <see cref="FewLabelHead.LogisticRegression"/>, <see cref="FewLabelHead.NearestClassMean"/> and
    /// <see cref="FewLabelHead.LabelPropagation"/> heads, the head <see cref="PropagateAfterFineTuning"/> fits, and the
    /// propagation of <see cref="PropagatedLabelFraction"/>; it needs a convolutional encoder (not an ONNX one).
    /// Grid 2 multiplies the encoder's part of the description by 5 (64 to 320 numbers for the width-16 CNN). On full
    /// Fashion-MNIST at the CPU budget it raised the propagation head in all three pairs measured (docs/results.md).
    /// Off by default until measured beyond Fashion-MNIST; the console turns it on. Default: 0.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors: it reaches training only through the extra labeled rows
    public int FeatureGrid { get; set; }

    /// <summary>
    /// Whether frozen features are read as the mean over each image and its horizontal mirror, wherever they are read
    /// (the same heads and propagation as <see cref="FeatureGrid"/>, and the saved model when it scores): a test-time
    /// augmentation that makes an image and its mirror one point of the graph and of the head, so neighbours are found
    /// by what an item is, not by which way it faces. It doubles the cost of every feature pass. Use it only when the
    /// classes look the same mirrored (clothing, most photographs), never for text or digits, where a mirror changes
    /// the class. On full Fashion-MNIST at four labels per class it measured in docs/results.md; off by default because
    /// it depends on that symmetry. Default: false.
    /// </summary>
    [ExcludedFromFingerprint]   // as FeatureGrid
    public bool MirrorAveragedFeatures { get; set; }

    /// <summary>Largest <see cref="FeatureGrid"/>: the small CNN's last map is 7 × 7 at 28 × 28 and 8 × 8 at 32 × 32, and a finer grid only repeats its cells.</summary>
    private const int MaxFeatureGrid = 8;

    /// <summary>
    /// Whether label propagation gives each class its share of the labeled rows among the unlabeled ones (class mass
    /// normalisation, Zhu et al. 2003, by Sinkhorn rounds over the propagated scores): with N labels per class, every
    /// class ends with about the same number of rows. Left alone, a class whose few labels sit in a dense part of the
    /// graph claims far more than its share: on Fashion-MNIST with one label per class the largest propagated class
    /// held 9,587 of 60,000 images and the smallest 3,189. Turn it off when the labeled rows' class mix says nothing
    /// about the unlabeled rows'. Default: true.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public bool PropagationBalancesClasses { get; set; } = true;

    /// <summary>
    /// Whether label propagation spreads the labels twice: the second time over a graph in which the images'
    /// descriptions are first whitened by the within-class scatter of the first pass's classes (the metric of linear
    /// discriminant analysis, learnt from the pseudo-labels), so that what varies within a class counts less in the
    /// similarity and what separates classes counts more. It applies wherever labels are propagated
    /// (<see cref="FewLabelHead.LabelPropagation"/>, <see cref="PropagatedLabelFraction"/>,
    /// <see cref="PropagateAfterFineTuning"/>) and about doubles propagation's time (a second graph, and an
    /// eigendecomposition of a matrix as wide as the description). On full Fashion-MNIST, over a graph of a
    /// contrastive encoder's features and the orientation histograms (<see cref="PropagationGradientWeight"/> 1,
    /// <see cref="PropagationPixelWeight"/> 0), it gave 2.4 points more rows their true class at four labels per
    /// class and 1.8 at one, on average over three label draws; a third and fourth pass gave nothing more, and with
    /// the pixels in the graph too the gains were smaller (2.0 and 1.4), see docs/results.md. Off by default until
    /// measured beyond Fashion-MNIST; the console turns it on. Default: false.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public bool PropagationLearnsMetric { get; set; }

    /// <summary>
    /// With <see cref="Head"/> = <see cref="FewLabelHead.FineTune"/> from a pretrained encoder: the fraction of each
    /// class's unlabeled rows, the most certain first, that label propagation over the pretrained features (as in
    /// <see cref="FewLabelHead.LabelPropagation"/>) adds to the labeled set before training, each weighted by its
    /// certainty; 0 adds none. Default: 0.
    /// </summary>
    [ExcludedFromFingerprint]   // as PropagationNeighbors
    public double PropagatedLabelFraction { get; set; }

    /// <summary>
    /// With <see cref="Head"/> = <see cref="FewLabelHead.FineTune"/>: after training, spread the labels once more, over
    /// the fine-tuned network's features, and fit the <see cref="FewLabelHead.LabelPropagation"/> head on them; the
    /// result is that head on the frozen fine-tuned encoder instead of the network's own head. Fine-tuning on the most
    /// certain propagated rows (<see cref="PropagatedLabelFraction"/>) makes neighbours agree on their class more
    /// often than the pretrained features did. On full Fashion-MNIST at the CPU budget with 4 labels per class this
    /// gave 75.75 % and 73.77 % (seeds 1 and 2) against 74.45 % and 71.21 % for the propagation head on the pretrained
    /// encoder; with 1 label per class it was level or worse (67.39 / 59.65 % against 67.41 / 61.66 %), see
    /// docs/results.md. Default: false.
    /// </summary>
    [ExcludedFromFingerprint]   // applied after the checkpointed training loop, whose result it does not change
    public bool PropagateAfterFineTuning { get; set; }

    /// <summary>Where to train. Default: <see cref="DptDevice.Auto"/>.</summary>
    [ExcludedFromFingerprint]
    public DptDevice Device { get; set; } = DptDevice.Auto;

    /// <summary>Seed; null takes one from the MLContext's seed. Default: null.</summary>
    public int? Seed { get; set; }

    /// <summary>Steps between progress reports (each costs one device synchronisation). Default: 100.</summary>
    [ExcludedFromFingerprint]
    public int LogInterval { get; set; } = 100;

    /// <summary>Called with each progress report, besides the MLContext log. Default: none.</summary>
    [ExcludedFromFingerprint]
    public Action<TrainingProgress>? Progress { get; set; }

    /// <summary>Stops training at the next step with <see cref="OperationCanceledException"/>. Default: none.</summary>
    [ExcludedFromFingerprint]
    public CancellationToken CancellationToken { get; set; }

    /// <summary>
    /// Folder for training checkpoints; null writes none. With a folder, the training state is saved there every
    /// <see cref="CheckpointInterval"/> steps and at the end, and a later Fit with the same options, seed and data
    /// continues from it, or skips training when that run had finished. Default: null.
    /// </summary>
    [ExcludedFromFingerprint]
    public string? CheckpointFolder { get; set; }

    /// <summary>Steps between checkpoints (with <see cref="CheckpointFolder"/> set). Default: 500.</summary>
    public int CheckpointInterval { get; set; } = 500;

    /// <summary>
    /// Whether these settings end with a head on frozen features (<see cref="Head"/> other than
    /// <see cref="FewLabelHead.FineTune"/>, or <see cref="PropagateAfterFineTuning"/>): the settings that shape such a
    /// head, like <see cref="HeadGradientWeight"/>, must be 0 otherwise.
    /// </summary>
    public bool FitsFrozenFeatureHead => Head != FewLabelHead.FineTune || PropagateAfterFineTuning;

    /// <summary>
    /// Whether these settings end with a logistic-regression head on frozen features (<see cref="Head"/> =
    /// <see cref="FewLabelHead.LogisticRegression"/> or <see cref="FewLabelHead.LabelPropagation"/>, or
    /// <see cref="PropagateAfterFineTuning"/>), the only heads that read <see cref="HeadL2Regularization"/>.
    /// </summary>
    [ExcludedFromFingerprint]   // derived from Head and PropagateAfterFineTuning, which are fingerprinted
    public bool FitsLogisticRegressionHead => Head is FewLabelHead.LogisticRegression or FewLabelHead.LabelPropagation || PropagateAfterFineTuning;

    /// <summary>
    /// Whether these settings read a convolutional encoder's frozen features anywhere (a frozen-feature head, or the
    /// propagation of <see cref="PropagatedLabelFraction"/>), without an ONNX <see cref="Encoder"/>:
    /// <see cref="FeatureGrid"/> must be 0 otherwise.
    /// </summary>
    public bool ReadsFrozenCnnFeatures => ReadsFrozenFeatures && Encoder is null;

    /// <summary>
    /// Whether these settings read an encoder's frozen features anywhere (a frozen-feature head, or the propagation of
    /// <see cref="PropagatedLabelFraction"/>): <see cref="MirrorAveragedFeatures"/> must be false otherwise.
    /// </summary>
    public bool ReadsFrozenFeatures => FitsFrozenFeatureHead || PropagatedLabelFraction > 0;

    /// <summary>The network description for images of <paramref name="shape"/> and <paramref name="classes"/> classes.</summary>
    internal NetworkSpec NetworkSpecFor(ImageShape shape, int classes) => Encoder is not null
        ? new(ClassifierNetwork.OnnxEncoder, shape.Channels, classes, 1, NormalizedFeatureHead: true, HeadGradientWeight, MirrorAveragedFeatures: MirrorAveragedFeatures)
        : new(Network, shape.Channels, classes, NetworkWidth ?? (Network == ClassifierNetwork.WideResNet28x2 ? 2 : 32), Head != FewLabelHead.FineTune,
            Head != FewLabelHead.FineTune ? HeadGradientWeight : 0, Head != FewLabelHead.FineTune ? FeatureGrid : 0,
            Head != FewLabelHead.FineTune && MirrorAveragedFeatures);

    /// <summary>Checks every setting and names the first that is out of range.</summary>
    internal virtual void Validate()
    {
        Check(!string.IsNullOrWhiteSpace(ImageColumnName), nameof(ImageColumnName), $"'{ImageColumnName}'", "a column name");
        Check(!string.IsNullOrWhiteSpace(LabelColumnName), nameof(LabelColumnName), $"'{LabelColumnName}'", "a column name");
        Check(Enum.IsDefined(Algorithm), nameof(Algorithm), Algorithm, "SupervisedOnly, FixMatch or FreeMatch");
        Check(Enum.IsDefined(Network) && Network != ClassifierNetwork.OnnxEncoder, nameof(Network), Network, "SmallCnn or WideResNet28x2 (for an ONNX encoder, set Encoder)");
        Check(NetworkWidth is null or >= 1, nameof(NetworkWidth), NetworkWidth, "null or at least 1");
        Check(Encoder is null || Head != FewLabelHead.FineTune, nameof(Head), Head, "LogisticRegression, NearestClassMean or LabelPropagation with an Encoder (an ONNX encoder stays frozen)");
        Check(Encoder is null || Pretraining is null, nameof(Pretraining), "set", "null with an Encoder (the encoder is already pretrained)");
        Check(NumberOfSteps >= 1, nameof(NumberOfSteps), NumberOfSteps, "at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Check(UnlabeledRatio >= 1, nameof(UnlabeledRatio), UnlabeledRatio, "at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
        Check(Momentum is >= 0 and < 1, nameof(Momentum), Momentum, "a number in [0, 1)");
        Check(WeightDecay is >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "a non-negative number");
        Check(EmaDecay is >= 0 and < 1, nameof(EmaDecay), EmaDecay, "a number in [0, 1)");
        Check(UnlabeledLossWeight >= 0 && double.IsFinite(UnlabeledLossWeight), nameof(UnlabeledLossWeight), UnlabeledLossWeight, "a non-negative number");
        Check(ConfidenceThreshold is >= 0 and <= 1, nameof(ConfidenceThreshold), ConfidenceThreshold, "a number in [0, 1]");
        Check(FreeMatchMomentum is >= 0 and < 1, nameof(FreeMatchMomentum), FreeMatchMomentum, "a number in [0, 1)");
        Check(FairnessWeight >= 0 && double.IsFinite(FairnessWeight), nameof(FairnessWeight), FairnessWeight, "a non-negative number");
        Check(Augmentation is not null, nameof(Augmentation), "null", "an AugmentationPolicy");
        Check(Augmentation!.MaxTranslation is >= 0 and <= 0.5, $"{nameof(Augmentation)}.{nameof(AugmentationPolicy.MaxTranslation)}", Augmentation.MaxTranslation, "a fraction in [0, 0.5]");
        Check(Augmentation.CutoutFraction is >= 0 and <= 1, $"{nameof(Augmentation)}.{nameof(AugmentationPolicy.CutoutFraction)}", Augmentation.CutoutFraction, "a fraction in [0, 1]");
        Check(Enum.IsDefined(Head), nameof(Head), Head, "FineTune, LogisticRegression, NearestClassMean or LabelPropagation");
        Check(HeadL2Regularization >= 0 && double.IsFinite(HeadL2Regularization), nameof(HeadL2Regularization), HeadL2Regularization, "a non-negative number");
        Check(headL2Regularization is null || FitsLogisticRegressionHead, nameof(HeadL2Regularization), HeadL2Regularization,
            "left unset unless a logistic-regression head is fitted (Head LogisticRegression or LabelPropagation, or PropagateAfterFineTuning)");
        Check(PropagationNeighbors >= 1, nameof(PropagationNeighbors), PropagationNeighbors, "at least 1");
        Check(PropagationPixelWeight >= 0 && double.IsFinite(PropagationPixelWeight), nameof(PropagationPixelWeight), PropagationPixelWeight, "a non-negative number");
        Check(PropagationGradientWeight >= 0 && double.IsFinite(PropagationGradientWeight), nameof(PropagationGradientWeight), PropagationGradientWeight, "a non-negative number");
        Check(PropagationPatchWeight >= 0 && double.IsFinite(PropagationPatchWeight), nameof(PropagationPatchWeight), PropagationPatchWeight, "a non-negative number");
        Check(HeadGradientWeight >= 0 && double.IsFinite(HeadGradientWeight), nameof(HeadGradientWeight), HeadGradientWeight, "a non-negative number");
        Check(HeadGradientWeight == 0 || FitsFrozenFeatureHead, nameof(HeadGradientWeight), HeadGradientWeight,
            "0 unless a frozen-feature head is fitted (Head other than FineTune, or PropagateAfterFineTuning)");
        Check(FeatureGrid is >= 0 and <= MaxFeatureGrid, nameof(FeatureGrid), FeatureGrid, $"0 to {MaxFeatureGrid} cells per side");
        Check(FeatureGrid == 0 || Encoder is null, nameof(FeatureGrid), FeatureGrid, "0 with an ONNX Encoder (it gives pooled features only)");
        Check(FeatureGrid == 0 || ReadsFrozenCnnFeatures, nameof(FeatureGrid), FeatureGrid,
            "0 unless frozen features are read (Head other than FineTune, PropagateAfterFineTuning or PropagatedLabelFraction)");
        Check(!MirrorAveragedFeatures || ReadsFrozenFeatures, nameof(MirrorAveragedFeatures), MirrorAveragedFeatures,
            "false unless frozen features are read (Head other than FineTune, PropagateAfterFineTuning or PropagatedLabelFraction)");
        Check(PropagatedLabelFraction is >= 0 and <= 1, nameof(PropagatedLabelFraction), PropagatedLabelFraction, "a fraction in [0, 1]");
        Check(PropagatedLabelFraction == 0 || Head == FewLabelHead.FineTune, nameof(PropagatedLabelFraction), PropagatedLabelFraction,
            "0 unless Head is FineTune (the LabelPropagation head already uses every row)");
        Check(!PropagateAfterFineTuning || Head == FewLabelHead.FineTune, nameof(PropagateAfterFineTuning), PropagateAfterFineTuning,
            "false unless Head is FineTune (a frozen head has nothing fine-tuned to propagate over)");
        Pretraining?.Validate(nameof(Pretraining) + ".");
        Check(MLImageChannels is 1 or 3, nameof(MLImageChannels), MLImageChannels, "1 or 3");
        Check(Enum.IsDefined(Device), nameof(Device), Device, "Auto, Cpu or Cuda");
        Check(LogInterval >= 1, nameof(LogInterval), LogInterval, "at least 1");
        Check(CheckpointInterval >= 1, nameof(CheckpointInterval), CheckpointInterval, "at least 1");
        Check(CheckpointFolder is null || !string.IsNullOrWhiteSpace(CheckpointFolder), nameof(CheckpointFolder), $"'{CheckpointFolder}'", "null or a folder path");
    }
}
