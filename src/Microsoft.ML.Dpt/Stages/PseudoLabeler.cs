using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Stages.Scoring;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.Checkpoints;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Dpt.Stages;

/// <summary>
/// Stage 1 of DPT: trains a semi-supervised image classifier on labeled and unlabeled rows (FixMatch, FreeMatch,
/// or supervised-only as the baseline) and returns a transformer that pseudo-labels every row.
/// </summary>
/// <remarks>
/// Input: an image column (float vector [C, H, W] in [0, 1], or MLImage) and a key-typed label column in which a
/// missing key marks an unlabeled row. Output: the <see cref="PseudoLabelerTransformer"/>, which adds
/// <c>PseudoLabel</c>, <c>PseudoLabelConfidence</c> and <c>Score</c>.
/// </remarks>
public sealed class PseudoLabeler : IEstimator<PseudoLabelerTransformer>
{
    /// <summary>Options of the <see cref="PseudoLabeler"/>. Training defaults: see <see cref="SemiSupervisedTrainerOptions"/>.</summary>
    public sealed class Options : SemiSupervisedTrainerOptions
    {
        /// <summary>Output key column with the pseudo-label. Default: "PseudoLabel".</summary>
        [ExcludedFromFingerprint]
        public string PseudoLabelColumnName { get; set; } = DefaultColumnNames.PseudoLabel;

        /// <summary>Output float column with the pseudo-label's confidence. Default: "PseudoLabelConfidence".</summary>
        [ExcludedFromFingerprint]
        public string ConfidenceColumnName { get; set; } = DefaultColumnNames.PseudoLabelConfidence;

        /// <summary>Output vector column with the class probabilities. Default: "Score".</summary>
        [ExcludedFromFingerprint]
        public string ScoreColumnName { get; set; } = DefaultColumnNames.Score;

        /// <summary>
        /// Whether rows that already have a label keep it as their pseudo-label (with confidence 1) when the label
        /// column is present at transform time. <c>Score</c> is always the model's own prediction. Default: true,
        /// as in DPT, where stage 2 trains on the true labels where they are known.
        /// </summary>
        [ExcludedFromFingerprint]
        public bool KeepKnownLabels { get; set; } = true;

        internal override void Validate()
        {
            base.Validate();
            var names = new[] { PseudoLabelColumnName, ConfidenceColumnName, ScoreColumnName };
            if (names.Any(string.IsNullOrWhiteSpace) || names.Distinct().Count() != names.Length)
                throw new ArgumentException($"Options PseudoLabelColumnName, ConfidenceColumnName and ScoreColumnName must be three different names; got '{PseudoLabelColumnName}', '{ConfidenceColumnName}', '{ScoreColumnName}'.");
        }
    }

    private readonly IHost _host;
    private readonly Options _options;

    internal PseudoLabeler(MLContext mlContext, Options options)
    {
        _host = ((IHostEnvironment)mlContext).Register(nameof(PseudoLabeler));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains the classifier on <paramref name="input"/> and returns the pseudo-labeling transformer.</summary>
    public PseudoLabelerTransformer Fit(IDataView input)
    {
        using var channel = _host.Start(nameof(Fit));
        var data = ClassifierTraining.ReadTrainingData(input, _options);
        var classifier = ClassifierTraining.Train(_host, channel, _options, data, nameof(PseudoLabeler));
        return new PseudoLabelerTransformer(classifier, _options.ImageColumnName, _options.MLImageChannels, _options.LabelColumnName,
            _options.KeepKnownLabels, _options.PseudoLabelColumnName, _options.ConfidenceColumnName, _options.ScoreColumnName);
    }

    /// <summary>Checks the input columns and describes the output columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        ClassifierOutputs.OutputShape(ClassifierTraining.CheckLabel(inputSchema, _options.LabelColumnName), _options.ImageColumnName,
            _options.ScoreColumnName, _options.PseudoLabelColumnName, _options.ConfidenceColumnName);
}
