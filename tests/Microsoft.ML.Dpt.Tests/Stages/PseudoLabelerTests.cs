using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Stages.Scoring;
using Microsoft.ML.Dpt.Training;
using Microsoft.ML.Dpt.Training.SemiSupervised;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Stages;

public class PseudoLabelerTests
{
    /// <summary>Tiny settings: a few steps of a 4-channel CNN, enough to exercise every path in seconds.</summary>
    internal static PseudoLabeler.Options TinyOptions(SemiSupervisedAlgorithm algorithm = SemiSupervisedAlgorithm.FreeMatch) => new()
    {
        Algorithm = algorithm, NumberOfSteps = 6, BatchSize = 8, UnlabeledRatio = 2, NetworkWidth = 4, LogInterval = 3, Device = DptDevice.Cpu,
    };

    private static (MLContext Ml, IDataView Train, IDataView Test) SmallData(int seed = 1)
    {
        var ml = new MLContext(seed: seed);
        var train = FewLabelSplit.Apply(TestData.SmallTrain(10), 2, seed: 1).ToDataView(ml);
        var test = TestData.SmallTrain(3).ToDataView(ml);
        return (ml, train, test);
    }

    [Theory]
    [InlineData(SemiSupervisedAlgorithm.SupervisedOnly)]
    [InlineData(SemiSupervisedAlgorithm.FixMatch)]
    [InlineData(SemiSupervisedAlgorithm.FreeMatch)]
    public void AddsPseudoLabelConfidenceAndScoreToEveryRowInOrder(SemiSupervisedAlgorithm algorithm)
    {
        var (ml, train, test) = SmallData();
        using var model = ml.Dpt().PseudoLabeler(TinyOptions(algorithm)).Fit(train);
        var scored = model.Transform(test);

        Assert.Equal(30, scored.GetColumn<uint>("PseudoLabel").Count());
        Assert.Equal(test.GetColumn<uint>("Label"), scored.GetColumn<uint>("Label"));
        Assert.Equal(test.Schema["Label"].Type, scored.Schema["PseudoLabel"].Type);
        VBuffer<ReadOnlyMemory<char>> names = default;
        scored.Schema["PseudoLabel"].GetKeyValues(ref names);
        Assert.Equal(FashionMnist.ClassNames, names.DenseValues().Select(n => n.ToString()));
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        Assert.All(scores, s => Assert.Equal(1.0, s.Sum(), 4));
        var confidences = scored.GetColumn<float>("PseudoLabelConfidence").ToArray();
        Assert.All(confidences, c => Assert.InRange(c, 0.1f, 1f));
    }

    [Fact]
    public void KnownLabelsAreKeptAndUnknownOnesPredicted()
    {
        var (ml, train, _) = SmallData();
        using var model = ml.Dpt().PseudoLabeler(TinyOptions()).Fit(train);
        var scored = model.Transform(train);

        var labels = scored.GetColumn<uint>("Label").ToArray();
        var pseudo = scored.GetColumn<uint>("PseudoLabel").ToArray();
        var confidence = scored.GetColumn<float>("PseudoLabelConfidence").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] != 0)
            {
                Assert.Equal(labels[i], pseudo[i]);
                Assert.Equal(1f, confidence[i]);
            }
            else
            {
                Assert.Equal((uint)(Array.IndexOf(scores[i], scores[i].Max()) + 1), pseudo[i]);
                Assert.Equal(scores[i].Max(), confidence[i]);
            }
        }
    }

    [Fact]
    public void WorksInAnEstimatorChainWithEvaluateAndPredictionEngine()
    {
        var (ml, train, test) = SmallData();
        var chain = ml.Transforms.CopyColumns("OriginalImage", "Image")
            .Append(ml.Dpt().PseudoLabeler(TinyOptions() is var o ? (o.KeepKnownLabels = false, o).o : null!));
        var model = chain.Fit(train);
        var scored = model.Transform(test);

        var metrics = ml.MulticlassClassification.Evaluate(scored, "Label", "Score", "PseudoLabel");
        Assert.InRange(metrics.MicroAccuracy, 0, 1);
        Assert.Equal(10, metrics.ConfusionMatrix.NumberOfClasses);

        var engine = ml.Model.CreatePredictionEngine<ImageInput, PseudoLabelOutput>(model);
        var images = test.GetColumn<float[]>("Image").ToArray();
        var expected = scored.GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < 3; i++)
        {
            var prediction = engine.Predict(new ImageInput { Image = images[i] });
            Assert.Equal(expected[i], prediction.Score, new FloatTolerance(1e-5f));
        }
        // Two different images in a row: the engine must not serve the first one's result again.
        var first = engine.Predict(new ImageInput { Image = images[0] }).Score;
        var second = engine.Predict(new ImageInput { Image = images[29] }).Score;
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void GetOutputSchemaDescribesTheNewColumns()
    {
        var (ml, train, _) = SmallData();
        var shape = ml.Dpt().PseudoLabeler(TinyOptions()).GetOutputSchema(SchemaShapeColumns.FromSchema(train.Schema));
        var pseudo = shape.Single(c => c.Name == "PseudoLabel");
        Assert.True(pseudo.IsKey);
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, shape.Single(c => c.Name == "Score").Kind);
        Assert.Equal(NumberDataViewType.Single, shape.Single(c => c.Name == "PseudoLabelConfidence").ItemType);
        Assert.Contains(shape, c => c.Name == "Image");
    }

    [Fact]
    public void SchemaErrorsNameTheColumnAndTheExpectedType()
    {
        var ml = new MLContext(seed: 1);
        var text = ml.Data.LoadFromEnumerable(new[] { new TextRow { Image = "x", Label = 1 }, new TextRow { Image = "y", Label = 2 } });
        var labeler = ml.Dpt().PseudoLabeler(TinyOptions());

        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(new PseudoLabeler.Options { ImageColumnName = "Pixels" }).Fit(text));
        Assert.Contains("Label column 'Label' has type Single", missing.Message);

        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(text).Transform(text);
        var wrongImage = Assert.Throws<ArgumentOutOfRangeException>(() => labeler.Fit(keyed));
        Assert.Contains("Image column 'Image' has type String", wrongImage.Message);
        Assert.Contains("vector of Single", wrongImage.Message);

        var noImage = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(new PseudoLabeler.Options { ImageColumnName = "Pixels" }).Fit(keyed));
        Assert.Contains("Image column 'Pixels' was not found", noImage.Message);

        var shapeError = Assert.Throws<ArgumentOutOfRangeException>(() => labeler.GetOutputSchema(SchemaShapeColumns.FromSchema(text.Schema)));
        Assert.Contains("Label column 'Label'", shapeError.Message);
        Assert.Contains("key type", shapeError.Message);
    }

    [Fact]
    public void PixelValuesOutsideTheUnitRangeAreAnErrorNotClamped()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.SmallTrain(2);
        var pixels = (float[])data.Pixels.Clone();
        pixels[100] = 255f;
        var view = new ImageDataset(pixels, data.Labels, data.Shape, data.ClassNames).ToDataView(ml);
        var error = Assert.Throws<InvalidDataException>(() => ml.Dpt().PseudoLabeler(TinyOptions()).Fit(view));
        Assert.Contains("Image column 'Image' has value 255", error.Message);
    }

    [Theory]
    [InlineData(nameof(SemiSupervisedTrainerOptions.NumberOfSteps), "Option NumberOfSteps is 0; expected at least 1.")]
    [InlineData(nameof(SemiSupervisedTrainerOptions.ConfidenceThreshold), "Option ConfidenceThreshold is 1.5; expected a number in [0, 1].")]
    [InlineData(nameof(SemiSupervisedTrainerOptions.EmaDecay), "Option EmaDecay is 1; expected a number in [0, 1).")]
    [InlineData(nameof(SemiSupervisedTrainerOptions.LearningRate), "Option LearningRate is -1; expected a positive number.")]
    public void OptionErrorsNameTheOption(string option, string expected)
    {
        var options = TinyOptions();
        switch (option)
        {
            case nameof(options.NumberOfSteps): options.NumberOfSteps = 0; break;
            case nameof(options.ConfidenceThreshold): options.ConfidenceThreshold = 1.5; break;
            case nameof(options.EmaDecay): options.EmaDecay = 1; break;
            default: options.LearningRate = -1; break;
        }
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext().Dpt().PseudoLabeler(options));
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void AClassWithoutAnyLabelIsAnError()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.SmallTrain(3);
        var labels = data.Labels.Select(l => l == 4 ? -1 : l).ToArray();
        var view = new ImageDataset(data.Pixels, labels, data.Shape, data.ClassNames).ToDataView(ml);
        var error = Assert.Throws<InvalidOperationException>(() => ml.Dpt().PseudoLabeler(TinyOptions()).Fit(view));
        Assert.Contains("no labeled row of class 'Coat'", error.Message);
    }

    [Fact]
    public void ReportsProgressToTheCallbackAndTheMLContextLog()
    {
        var (ml, train, _) = SmallData();
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith(nameof(PseudoLabeler))) lock (log) log.Add(e.Message); };
        var reports = new List<TrainingProgress>();
        var options = TinyOptions();
        options.Progress = reports.Add;
        using var _ = ml.Dpt().PseudoLabeler(options).Fit(train);

        Assert.Equal(new[] { 3, 6 }, reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.True(double.IsFinite(r.Loss) && r.Loss > 0));
        Assert.All(reports, r => Assert.InRange(r.MaskRate, 0, 1));
        Assert.Contains(log, m => m.Contains("PseudoLabeler step 6/6"));
        Assert.Contains(log, m => m.Contains("FreeMatch with SmallCnn on 100 images"));
    }

    [Fact]
    public void CancellationStopsTrainingCleanly()
    {
        var (ml, train, _) = SmallData();
        using var cancel = new CancellationTokenSource();
        var options = TinyOptions();
        options.NumberOfSteps = 10_000;
        options.LogInterval = 1;
        options.CancellationToken = cancel.Token;
        options.Progress = p => { if (p.Step == 2) cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => ml.Dpt().PseudoLabeler(options).Fit(train));
    }

    [Fact]
    public void TheMLContextSeedMakesTrainingReproducible()
    {
        float[][] Scores(int seed)
        {
            var (ml, train, test) = SmallData(seed);
            using var model = ml.Dpt().PseudoLabeler(TinyOptions()).Fit(train);
            return model.Transform(test).GetColumn<float[]>("Score").ToArray();
        }
        var a = Scores(5);
        var b = Scores(5);
        var c = Scores(6);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    private sealed class TextRow
    {
        public string Image { get; set; } = "";
        public float Label { get; set; }
    }

    internal sealed class ImageInput
    {
        [VectorType(1, 28, 28)]
        public float[] Image { get; set; } = Array.Empty<float>();
    }

    internal sealed class PseudoLabelOutput
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public uint PseudoLabel { get; set; }
    }

    private sealed class FloatTolerance : IEqualityComparer<float>
    {
        private readonly float _tolerance;
        public FloatTolerance(float tolerance) => _tolerance = tolerance;
        public bool Equals(float x, float y) => Math.Abs(x - y) <= _tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
