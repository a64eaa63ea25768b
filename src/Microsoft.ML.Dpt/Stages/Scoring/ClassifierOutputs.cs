using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;

namespace Microsoft.ML.Dpt.Stages.Scoring;

/// <summary>
/// The columns a fitted classifier adds to each row, and how they are computed from the image (and, for
/// pseudo-labels, the known label): a <c>Score</c> vector of class probabilities, a key column with the label's
/// key values (<c>PseudoLabel</c> or <c>PredictedLabel</c>) and optionally a confidence column.
/// </summary>
internal sealed class ClassifierOutputs
{
    public ClassifierOutputs(TrainedClassifier classifier, string imageColumnName, int mlImageChannels, string scoreColumnName,
        string keyColumnName, string? confidenceColumnName, string? knownLabelColumnName)
    {
        Classifier = classifier;
        ImageColumnName = imageColumnName;
        MLImageChannels = mlImageChannels;
        ScoreColumnName = scoreColumnName;
        KeyColumnName = keyColumnName;
        ConfidenceColumnName = confidenceColumnName;
        KnownLabelColumnName = knownLabelColumnName;
    }

    public TrainedClassifier Classifier { get; }
    public string ImageColumnName { get; }
    public int MLImageChannels { get; }
    public string ScoreColumnName { get; }
    public string KeyColumnName { get; }
    public string? ConfidenceColumnName { get; }
    /// <summary>When set and present in the input, rows with a known label keep it as their key value (confidence 1).</summary>
    public string? KnownLabelColumnName { get; }

    private int Classes => Classifier.ClassNames.Count;

    /// <summary>Binds the input schema: checks the image column (and the known-label column when present).</summary>
    public Binding Bind(DataViewSchema input)
    {
        var image = ImageColumn.Bind(input, ImageColumnName, Classifier.Shape, MLImageChannels);
        int? labelIndex = null;
        if (KnownLabelColumnName is not null && input.GetColumnOrNull(KnownLabelColumnName) is { } labelColumn)
        {
            var label = LabelColumn.Bind(input, KnownLabelColumnName);
            if (label.ClassCount != Classes)
                throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{KnownLabelColumnName}' has {label.ClassCount} classes; the model was trained with {Classes}.");
            labelIndex = labelColumn.Index;
        }
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, Classes));
        builder.AddColumn(KeyColumnName, new KeyDataViewType(typeof(uint), Classes), KeyValues.Annotations(Classifier.ClassNames));
        if (ConfidenceColumnName is not null) builder.AddColumn(ConfidenceColumnName, NumberDataViewType.Single);
        return new Binding(this, input, builder.ToSchema(), image, labelIndex);
    }

    /// <summary>Checks that a schema shape has an image column: a known-size vector of Single, or an MLImage.</summary>
    public static void CheckImageColumn(SchemaShape input, string imageColumnName)
    {
        var image = input.FirstOrDefault(c => c.Name == imageColumnName);
        if (image.Name is null)
            throw new ArgumentOutOfRangeException(nameof(input), $"Image column '{imageColumnName}' was not found in the input schema.");
        bool isVector = image.Kind == SchemaShape.Column.VectorKind.Vector && image.ItemType == NumberDataViewType.Single;
        bool isImage = image.Kind == SchemaShape.Column.VectorKind.Scalar && image.ItemType is Microsoft.ML.Transforms.Image.ImageDataViewType;
        if (!(isVector && !image.IsKey) && !isImage)
            throw new ArgumentOutOfRangeException(nameof(input), $"Image column '{imageColumnName}' has type {image.ItemType} ({image.Kind}); expected a known-size vector of Single or an MLImage.");
    }

    /// <summary>The output shape for <c>GetOutputSchema(SchemaShape)</c>, after checking the input columns; needs no trained model.</summary>
    public static SchemaShape OutputShape(SchemaShape input, string imageColumnName, string scoreColumnName, string keyColumnName, string? confidenceColumnName)
    {
        CheckImageColumn(input, imageColumnName);
        var added = new List<SchemaShape.Column>
        {
            SchemaShapeColumns.Vector(scoreColumnName, NumberDataViewType.Single),
            SchemaShapeColumns.Scalar(keyColumnName, NumberDataViewType.UInt32, isKey: true, SchemaShapeColumns.KeyValuesAnnotation()),
        };
        if (confidenceColumnName is not null) added.Add(SchemaShapeColumns.Scalar(confidenceColumnName, NumberDataViewType.Single));
        return SchemaShapeColumns.Append(input, added);
    }

    /// <summary>The outputs for a block of rows.</summary>
    public sealed class Block
    {
        public Block(int capacity, int classes)
        {
            Scores = new float[capacity * classes];
            Keys = new uint[capacity];
            Confidences = new float[capacity];
        }

        public float[] Scores { get; }
        public uint[] Keys { get; }
        public float[] Confidences { get; }
    }

    /// <summary>An input schema bound to these outputs.</summary>
    public sealed class Binding
    {
        private readonly ClassifierOutputs _outputs;

        internal Binding(ClassifierOutputs outputs, DataViewSchema input, DataViewSchema output, ImageColumn image, int? knownLabelIndex)
        {
            _outputs = outputs;
            InputSchema = input;
            OutputSchema = output;
            Image = image;
            KnownLabelIndex = knownLabelIndex;
        }

        public DataViewSchema InputSchema { get; }
        public DataViewSchema OutputSchema { get; }
        public ImageColumn Image { get; }
        public int? KnownLabelIndex { get; }
        public int Classes => _outputs.Classes;

        /// <summary>The classifier that computes the outputs.</summary>
        public TrainedClassifier Classifier => _outputs.Classifier;

        /// <summary>Index in the output schema of the first added column.</summary>
        public int FirstOutputIndex => InputSchema.Count;

        public bool IsOutput(int outputIndex) => outputIndex >= InputSchema.Count;

        /// <summary>Input columns needed to compute the outputs.</summary>
        public IEnumerable<DataViewSchema.Column> Dependencies()
        {
            yield return InputSchema[Image.Name];
            if (KnownLabelIndex is int label) yield return InputSchema[label];
        }

        /// <summary>Scores <paramref name="count"/> images and fills <paramref name="block"/>.</summary>
        public void Compute(float[] pixels, uint[] knownLabels, int count, Block block)
        {
            var probabilities = _outputs.Classifier.PredictProbabilities(pixels.AsSpan(0, count * Image.Shape.Size), count);
            int k = Classes;
            Array.Copy(probabilities, block.Scores, count * k);
            for (int i = 0; i < count; i++)
            {
                int best = TrainedClassifier.MostProbable(probabilities.AsSpan(i * k, k));
                bool known = KnownLabelIndex is not null && knownLabels[i] != 0;
                block.Keys[i] = known ? knownLabels[i] : (uint)(best + 1);
                block.Confidences[i] = known ? 1f : probabilities[i * k + best];
            }
        }

        /// <summary>A getter for added column <paramref name="outputIndex"/>, reading row <paramref name="rowInBlock"/>() of the current block.</summary>
        public Delegate OutputGetter(int outputIndex, Func<Block> block, Func<int> rowInBlock)
        {
            int which = outputIndex - FirstOutputIndex;
            int k = Classes;
            if (which == 0)
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, k);
                    block().Scores.AsSpan(rowInBlock() * k, k).CopyTo(editor.Values);
                    value = editor.Commit();
                });
            if (which == 1)
                return (ValueGetter<uint>)((ref uint value) => value = block().Keys[rowInBlock()]);
            return (ValueGetter<float>)((ref float value) => value = block().Confidences[rowInBlock()]);
        }

        /// <summary>Reads the image (and known label) of the current row of <paramref name="row"/>.</summary>
        public Action<float[], uint[], int> CreateInputReader(DataViewRow row)
        {
            var image = Image.CreateGetter(row);
            ValueGetter<uint>? label = KnownLabelIndex is int index ? row.GetGetter<uint>(row.Schema[index]) : null;
            int size = Image.Shape.Size;
            return (pixels, labels, slot) =>
            {
                image(pixels.AsSpan(slot * size, size));
                if (label is not null)
                {
                    uint value = 0;
                    label(ref value);
                    labels[slot] = value;
                }
            };
        }
    }
}
