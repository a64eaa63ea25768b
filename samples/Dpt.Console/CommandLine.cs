using System.Globalization;
using Microsoft.ML.Dpt.Diffusion.Samplers;
using Microsoft.ML.Dpt.Runtime;

namespace Dpt.ConsoleApp;

/// <summary>Budget presets: quick fits 2 CPU cores in minutes; full is the benchmark budget, meant for a GPU.</summary>
internal enum Preset { Quick, Full }

/// <summary>
/// The classifier that vets stage 3's generated images (with --filter-generated): stage 1's; a supervised SmallCnn
/// trained on stage 1's pseudo-labels of every training image; or the fully supervised reference, which knows every
/// true label (a measurement of what class-faithful images give stage 3, not a method).
/// </summary>
internal enum FilterClassifier { Stage1, PseudoLabels, TrueLabels }

/// <summary>The main job's command line.</summary>
internal sealed record CommandLine
{
    public string? DataFolder { get; init; }
    public int[] LabelsPerClass { get; init; } = { 4 };
    public Preset Preset { get; init; } = Preset.Quick;
    public DptDevice Device { get; init; } = DptDevice.Auto;
    public int Seed { get; init; } = 1;
    public string OutputFolder { get; init; } = "out";
    public string? CheckpointFolder { get; init; }
    public Stage1Method[] Algorithms { get; init; } = { Stage1Method.FreeMatch };
    public int? PretrainingSteps { get; init; }
    public double? PretrainingTemperature { get; init; }
    public double? MinCropScale { get; init; }
    public int PropagationNeighbors { get; init; } = 10;
    public double PropagatedFraction { get; init; } = 0.2;
    public double PixelWeight { get; init; }                  // the library's default is 1; with the learned metric 0 did better, see docs/results.md
    public double GradientWeight { get; init; } = 1.0;       // the library's default is 0; see docs/results.md
    public double HeadGradientWeight { get; init; } = 1.0;   // the library's default is 0; see docs/results.md
    public double PatchWeight { get; init; } = 1.0;          // the library's default is 0; see docs/results.md
    public double? HeadL2 { get; init; }
    public int FeatureGrid { get; init; } = 2;                // the library's default is 0; see docs/results.md
    public bool BalanceClasses { get; init; } = true;
    public bool LearnMetric { get; init; } = true;            // the library's default is false; see docs/results.md
    public bool MirrorFeatures { get; init; }
    public bool FilterGenerated { get; init; }
    public FilterClassifier FilterWith { get; init; } = FilterClassifier.Stage1;
    public double GeneratedConfidence { get; init; }
    public double GeneratedPassRate { get; init; }
    public int? Steps { get; init; }
    public int? TrainImages { get; init; }
    public int? Width { get; init; }
    public int Stages { get; init; } = 3;
    public bool Stage2Reference { get; init; }
    public int? GeneratedPerClass { get; init; } = 20;
    public double GeneratedWeight { get; init; } = 0.25;
    public bool FineTune { get; init; }
    public int? DiffusionSteps { get; init; }
    public SamplerKind Sampler { get; init; } = SamplerKind.DpmSolverPlusPlus;
    public double GuidanceScale { get; init; } = 1.0;
    public int SamplingSteps { get; init; } = 25;
    public double ConditionedFraction { get; init; } = 1.0;
    public int? EvaluationImages { get; init; }
    public bool Verbose { get; init; }
    public bool Help { get; init; }

    public const string Usage = """
        Dpt.Console: Dual Pseudo Training on an MNIST/IDX data set. Runs the supervised-only baseline and the three
        stages (1: semi-supervised pseudo-labeling, 2: conditional diffusion model and its pseudo images, 3: the
        classifier retrained on real plus pseudo images), prints a results table and writes DIR/metrics.json.

        Usage: dotnet run -c Release --project samples/Dpt.Console -- [options]

          --data DIR               folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
                                   t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]
                                   (default: full Fashion-MNIST if installed, else the embedded subset)
          --labels-per-class N[,N] labels kept per class; the rest are unlabeled (default 4); a list runs each
          --preset quick|full      quick: a 6,000-image training subset, a width-16 CNN, 1,500 steps per
                                   classifier, a tiny U-Net (all three stages in about 6 minutes on 2 CPU
                                   cores); full: all training images, width 32, 5,000 steps, a small U-Net
                                   (4,000 steps of 256), the GPU budget: 382 s on an H100 (default quick)
          --algorithm A[,A...]     stage 1 methods, each compared with supervised-only on the same labels; the
                                   last one pseudo-labels for stage 2 and is repeated in stage 3 (default
                                   freematch): fixmatch, freematch, contrastive-head (SimCLR pretraining, then
                                   a logistic-regression head on the frozen features: DPT's ImageNet recipe),
                                   contrastive-means (nearest class mean instead), contrastive-propagation
                                   (labels spread over a nearest-neighbour graph of the features, then the
                                   head fitted on every image), contrastive-freematch (FreeMatch starting
                                   from the pretrained encoder), propagation-freematch (the same, with the most
                                   certain propagated labels added to the labeled set),
                                   propagation-freematch-propagation (the same, then the labels spread again
                                   over the fine-tuned features and the head fitted there), resnet18-head (the
                                   logistic-regression head on ML.NET's ImageNet ResNet-18 features, by ONNX
                                   Runtime on the CPU: about 50 images/s on 2 cores)
          --pretraining-steps N    contrastive pretraining steps (default: from the preset)
          --temperature T          softmax temperature of the contrastive loss (default 0.2)
          --min-crop F             smallest fraction of the image area a contrastive view's crop keeps
                                   (default 0.3)
          --neighbors N            neighbours per image in the label-propagation graph (default 10)
          --pixel-weight W         weight of the pixels beside the encoder's features in that graph's
                                   similarity; 0: none (default 0)
          --gradient-weight W      weight of the images' histograms of oriented gradients in that
                                   similarity; 0: none (default 1)
          --patch-weight W         weight of a patch dictionary learnt from the images (k-means over
                                   whitened 5x5 patches) in that similarity; 0: none (default 1)
          --head-gradient-weight W the same histograms beside the encoder's features in what a frozen-feature
                                   head reads (its logistic regression and its scoring); 0: none (default 1)
          --head-l2 L              L2 regularisation of a frozen-feature head's logistic regression
                                   (default: the library's, 0.01); refused with a method that has no such head
          --feature-grid G         frozen-feature heads and label propagation also read the CNN encoder's
                                   last feature map averaged over G x G cells; 0: its pooled features
                                   alone (default 2)
          --no-class-balance       label propagation takes each image's largest score as it is, instead of
                                   giving every class its share of the labeled images (default: balanced)
          --no-learned-metric      label propagation spreads the labels once, instead of twice: the second
                                   time over features whitened by the first pass's classes (default: twice)
          --mirror-features        frozen features are the mean over each image and its horizontal mirror,
          --no-mirror-features     in the graph, the head and the saved model (default: off)
          --propagated-fraction F  propagation-freematch: the most certain fraction of each class's
                                   unlabeled rows that joins the labeled set (default 0.2)
          --steps N                steps of every classifier: stages 1 and 3, the FD reference and the CAS
                                   classifier (default: from the preset)
          --train-images N         use only the first N training images, stratified (default: from the preset)
          --width N                width of every classifier's CNN, the contrastive encoder's too (its pooled
                                   features are 4 x N numbers; default: 16 quick, 32 full)
          --stages N               run stages 1 to N only (1, 2 or 3; default 3)
          --stage2-reference       also a diffusion model on the true labels, to compare FD and CAS
          --generated-per-class N  stage 3 uses N generated images per class, or all (default 20)
          --generated-weight W     weight of a generated image in stage 3's supervised loss (default 0.25; the
                                   paper's recipe is all at weight 1, which needs a generator near the data:
                                   see docs/results.md)
          --fine-tune              stage 3 starts from stage 1's weights instead of from scratch
          --filter-generated       stage 3 uses only the generated images that the filter's classifier (stage
                                   1's unless --filter-with) assigns to the class they were generated for, the
                                   most probable to it first
          --filter-with C          with --filter-generated, the filter's classifier: stage1 (default);
                                   pseudolabels, a supervised SmallCnn trained on stage 1's pseudo-labels of
                                   every training image (the fully supervised reference's recipe); or
                                   truelabels, the fully supervised reference itself, which knows every true
                                   label: a measurement of what class-faithful images give stage 3, not a method
          --generated-confidence P with --filter-generated: only the generated images that the filter's classifier
                                   gives probability P or more for their class (default 0)
          --generated-pass-rate F  with --filter-generated: a class of which the filter's classifier keeps less
                                   than the share F of the generated images gives none (default 0)
          --diffusion-steps N      diffusion training steps (default: from the preset)
          --conditioned-fraction F the generator learns each class from the most confident fraction F of
                                   stage 1's pseudo-labels of that class; the other images train only its
                                   unconditional half (default 1: every image, as in the paper)
          --sampler S              sampler of the generated images: ddpm, ddim or dpmsolverplusplus
                                   (default dpmsolverplusplus; ddpm's images are more often of their class)
          --sampling-steps N       the sampler's steps, 1 to the schedule's 1,000 (default 25)
          --guidance W             classifier-free guidance scale of the generated images: 0 samples the
                                   conditional model alone, larger values push each image further towards
                                   its class at the cost of variety (default 1)
          --evaluation-images N    generated and real images that FD and CAS use (default 2000)
          --device auto|cpu|cuda   where to train (default auto)
          --seed S                 seed of the label split, the weights and the sampling (default 1)
          --output DIR             where metrics.json, results.md, the sample grids and the models go (default
                                   out); DIR/checkpoints keeps every training run, so running the same command
                                   again continues where a stopped run left off and skips finished stages
          --checkpoints DIR        where the training runs are kept (default DIR/checkpoints of --output); runs
                                   with other output folders can share it to reuse finished stages
          --verbose                also print the estimators' log (MLContext.Log): the device chosen, label
                                   propagation's reach and seconds, the patch cache, stage 3's filter
          --help                   this text
        """;

    /// <summary>Parses the arguments; a wrong one throws <see cref="ArgumentException"/> with a one-line message.</summary>
    public static CommandLine Parse(string[] args)
    {
        var result = new CommandLine();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int(string name, int min)
            {
                var text = Value();
                return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min
                    ? v : throw new ArgumentException($"Option {name} needs a whole number of at least {min}; got '{text}'.");
            }
            T Choice<T>(string name) where T : struct, Enum
            {
                var text = Value();
                return Enum.TryParse<T>(text, ignoreCase: true, out var v) && Enum.IsDefined(v) && !int.TryParse(text, out _)
                    ? v : throw new ArgumentException($"Option {name} must be one of {string.Join(", ", Enum.GetNames<T>()).ToLowerInvariant()}; got '{text}'.");
            }
            result = args[i] switch
            {
                "--data" => result with { DataFolder = Value() },
                "--labels-per-class" => result with { LabelsPerClass = IntList("--labels-per-class", Value()) },
                "--preset" => result with { Preset = Choice<Preset>("--preset") },
                "--device" => result with { Device = Choice<DptDevice>("--device") },
                "--seed" => result with { Seed = Int("--seed", 0) },
                "--output" => result with { OutputFolder = Value() },
                "--checkpoints" => result with { CheckpointFolder = Value() },
                "--steps" => result with { Steps = Int("--steps", 1) },
                "--train-images" => result with { TrainImages = Int("--train-images", 1) },
                "--width" => result with { Width = Int("--width", 1) },
                "--algorithm" => result with { Algorithms = ParseAlgorithms(Value()) },
                "--stages" => result with { Stages = ParseStages(Value()) },
                "--stage2-reference" => result with { Stage2Reference = true },
                "--generated-per-class" => result with { GeneratedPerClass = GeneratedCount(Value()) },
                "--generated-weight" => result with { GeneratedWeight = NonNegative("--generated-weight", Value()) },
                "--fine-tune" => result with { FineTune = true },
                "--filter-generated" => result with { FilterGenerated = true },
                "--filter-with" => result with { FilterWith = Choice<FilterClassifier>("--filter-with") },
                "--generated-confidence" => result with { GeneratedConfidence = Probability("--generated-confidence", Value()) },
                "--generated-pass-rate" => result with { GeneratedPassRate = Probability("--generated-pass-rate", Value()) },
                "--diffusion-steps" => result with { DiffusionSteps = Int("--diffusion-steps", 1) },
                "--sampler" => result with { Sampler = Choice<SamplerKind>("--sampler") },
                "--guidance" => result with { GuidanceScale = NonNegative("--guidance", Value()) },
                "--sampling-steps" => result with { SamplingSteps = Int("--sampling-steps", 1) },
                "--conditioned-fraction" => result with { ConditionedFraction = Fraction("--conditioned-fraction", Value()) },
                "--pretraining-steps" => result with { PretrainingSteps = Int("--pretraining-steps", 1) },
                "--temperature" => result with { PretrainingTemperature = Positive("--temperature", Value()) },
                "--min-crop" => result with { MinCropScale = Fraction("--min-crop", Value()) },
                "--propagated-fraction" => result with { PropagatedFraction = Fraction("--propagated-fraction", Value()) },
                "--pixel-weight" => result with { PixelWeight = NonNegative("--pixel-weight", Value()) },
                "--gradient-weight" => result with { GradientWeight = NonNegative("--gradient-weight", Value()) },
                "--patch-weight" => result with { PatchWeight = NonNegative("--patch-weight", Value()) },
                "--head-gradient-weight" => result with { HeadGradientWeight = NonNegative("--head-gradient-weight", Value()) },
                "--head-l2" => result with { HeadL2 = NonNegative("--head-l2", Value()) },
                "--feature-grid" => result with { FeatureGrid = Int("--feature-grid", 0) },
                "--no-class-balance" => result with { BalanceClasses = false },
                "--no-learned-metric" => result with { LearnMetric = false },
                "--mirror-features" => result with { MirrorFeatures = true },
                "--no-mirror-features" => result with { MirrorFeatures = false },
                "--neighbors" => result with { PropagationNeighbors = Int("--neighbors", 1) },
                "--evaluation-images" => result with { EvaluationImages = Int("--evaluation-images", 2) },
                "--verbose" => result with { Verbose = true },
                "--help" or "-h" => result with { Help = true },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'; see --help."),
            };
        }
        // Refused rather than ignored: a method without a logistic-regression head would run as if the option were absent.
        if (result.HeadL2 is not null && result.Algorithms.FirstOrDefault(m => !m.FitsLogisticRegressionHead) is { } other)
            throw new ArgumentException($"Option --head-l2 regularises a frozen-feature head's logistic regression; --algorithm {other} fits none.");
        if (result.GeneratedConfidence > 0 && !result.FilterGenerated)
            throw new ArgumentException("Option --generated-confidence is a threshold of stage 1's filter; add --filter-generated.");
        if (result.GeneratedPassRate > 0 && !result.FilterGenerated)
            throw new ArgumentException("Option --generated-pass-rate is a threshold of stage 1's filter; add --filter-generated.");
        if (result.FilterWith != FilterClassifier.Stage1 && !result.FilterGenerated)
            throw new ArgumentException("Option --filter-with picks the classifier of stage 3's filter; add --filter-generated.");
        if (result.FilterWith != FilterClassifier.Stage1 && result.Stages < 3)
            throw new ArgumentException($"Option --filter-with picks stage 3's filter; --stages {result.Stages} stops before stage 3.");
        return result;
    }

    private static int? GeneratedCount(string text) =>
        text == "all" ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
        : throw new ArgumentException($"Option --generated-per-class needs a whole number of at least 0 or 'all'; got '{text}'.");

    private static int ParseStages(string text) =>
        text is "1" or "2" or "3" ? int.Parse(text, CultureInfo.InvariantCulture) : throw new ArgumentException($"Option --stages must be 1, 2 or 3; got '{text}'.");

    private static double Fraction(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v <= 1
            ? v : throw new ArgumentException($"Option {name} needs a fraction in (0, 1]; got '{text}'.");

    private static double Probability(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && v <= 1
            ? v : throw new ArgumentException($"Option {name} needs a probability in [0, 1]; got '{text}'.");

    private static double Positive(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
            ? v : throw new ArgumentException($"Option {name} needs a positive number; got '{text}'.");

    private static double NonNegative(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && double.IsFinite(v)
            ? v : throw new ArgumentException($"Option {name} needs a non-negative number; got '{text}'.");

    private static int[] IntList(string name, string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t =>
            int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= 1
                ? v : throw new ArgumentException($"Option {name} needs whole numbers of at least 1; got '{t}'.")).ToArray() is { Length: > 0 } list
            ? list : throw new ArgumentException($"Option {name} needs at least one number.");

    private static Stage1Method[] ParseAlgorithms(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(a =>
            Stage1Method.Choices.FirstOrDefault(m => m.CommandName == a.ToLowerInvariant())
            ?? throw new ArgumentException($"Option --algorithm takes {string.Join(", ", Stage1Method.Choices.Select(m => m.CommandName))}; got '{a}'.")).Distinct().ToArray();
}
