using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Models;
using Microsoft.ML.Dpt.Models.Encoders;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Training.FewLabelHeads;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Training;

public class OnnxEncoderTests
{
    private static PseudoLabeler.Options ResNet18Head(FewLabelHead head) => new()
    {
        Encoder = OnnxImageEncoder.ResNet18(), Head = head, Device = DptDevice.Cpu, Seed = 1, HeadL2Regularization = 0.01,
    };

    [Fact]
    public void ImageNetResNet18FeaturesGiveAFewLabelHeadFarAboveChanceAndTheEncoderTravelsWithTheModel()
    {
        // A learning test on real images: 4 labels per class of the embedded subset (the other 160 rows unlabeled),
        // a logistic-regression head on ML.NET's ImageNet ResNet-18, scored on 200 test images (chance: 10 %).
        var (trainAll, testAll) = TestData.FashionMnistSubset;
        var ml = new MLContext(seed: 1);
        var train = FewLabelSplit.Apply(trainAll.Select(Enumerable.Range(0, 200).ToArray()), 4, seed: 1);
        var test = testAll.Select(Enumerable.Range(0, 200).ToArray());
        using var model = ml.Dpt().PseudoLabeler(ResNet18Head(FewLabelHead.LogisticRegression)).Fit(train.ToDataView(ml));
        Assert.Equal(512, model.Classifier.Network.FeatureLength);

        var probabilities = model.Classifier.PredictProbabilities(test.Pixels, test.Count);
        double accuracy = Enumerable.Range(0, test.Count).Count(i => Enumerable.Range(0, 10).MaxBy(c => probabilities[i * 10 + c]) == test.Labels[i]) / (double)test.Count;
        Assert.True(accuracy >= 0.45, $"ResNet-18 + logistic regression scored {accuracy:P1} on 200 test images with 4 labels per class");

        using var folder = TestData.NewFolder();
        model.Save(folder.File("resnet18.dpt"));
        Assert.True(new FileInfo(folder.File("resnet18.dpt")).Length > 30_000_000);   // the ONNX models are inside
        using var loaded = ml.Dpt().LoadPseudoLabeler(folder.File("resnet18.dpt"), DptDevice.Cpu);
        Assert.Equal(probabilities, loaded.Classifier.PredictProbabilities(test.Pixels, test.Count));

        // A file whose encoder description lost its normalisation is a clear error that names the file and the key.
        File.Copy(folder.File("resnet18.dpt"), folder.File("no-mean.dpt"));
        using (var zip = System.IO.Compression.ZipFile.Open(folder.File("no-mean.dpt"), System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry(Microsoft.ML.Dpt.Persistence.ModelFile.ManifestEntry)!;
            System.Text.Json.Nodes.JsonNode manifest;
            using (var reader = entry.Open()) manifest = System.Text.Json.Nodes.JsonNode.Parse(reader)!;
            manifest["onnxEncoder"]!.AsObject().Remove("mean");
            entry.Delete();
            using var writer = new StreamWriter(zip.CreateEntry(Microsoft.ML.Dpt.Persistence.ModelFile.ManifestEntry).Open());
            writer.Write(manifest.ToJsonString());
        }
        var damaged = Assert.ThrowsAny<InvalidDataException>(() => ml.Dpt().LoadPseudoLabeler(folder.File("no-mean.dpt"), DptDevice.Cpu));
        Assert.Contains("no-mean.dpt", damaged.Message);
        Assert.Contains("'mean' is missing", damaged.Message);
    }

    [Fact]
    public void TheFeaturePassHonoursCancellation()
    {
        var ml = new MLContext(seed: 1);
        var options = ResNet18Head(FewLabelHead.LogisticRegression);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        options.CancellationToken = cancel.Token;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => ml.Dpt().PseudoLabeler(options).Fit(FewLabelSplit.Apply(TestData.SmallTrain(20), 1, seed: 1).ToDataView(ml)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"cancelled after {clock.Elapsed.TotalSeconds:F1} s; 200 images take about 4 s");
    }

    [Fact]
    public void MissingModelsAndMisusedOptionsAreClearErrors()
    {
        using var folder = TestData.NewFolder();
        var missing = Assert.Throws<FileNotFoundException>(() => OnnxImageEncoder.ResNet18(folder.Path));
        Assert.Contains(OnnxImageEncoder.ResNet18PackageName, missing.Message);
        Assert.Contains("ResNetPreprocess.onnx", missing.Message);
        Assert.Contains("nothing.onnx", Assert.Throws<FileNotFoundException>(() => OnnxImageEncoder.FromFile(folder.File("nothing.onnx"))).Message);

        File.WriteAllText(folder.File("broken.onnx"), "not a model");
        var broken = OnnxImageEncoder.FromFile(folder.File("broken.onnx"));
        var ml = new MLContext(seed: 1);
        var data = FewLabelSplit.Apply(TestData.SmallTrain(2), 1, seed: 1).ToDataView(ml);
        var options = new PseudoLabeler.Options { Encoder = broken, Head = FewLabelHead.LogisticRegression, Device = DptDevice.Cpu };
        Assert.Contains("broken.onnx", Assert.Throws<ArgumentException>(() => ml.Dpt().PseudoLabeler(options).Fit(data)).Message);

        var fineTune = ResNet18Head(FewLabelHead.FineTune);
        Assert.StartsWith("Option Head is FineTune", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(fineTune)).Message);
        var network = new PseudoLabeler.Options { Network = ClassifierNetwork.OnnxEncoder };
        Assert.StartsWith("Option Network is OnnxEncoder", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Dpt().PseudoLabeler(network)).Message);
    }
}
