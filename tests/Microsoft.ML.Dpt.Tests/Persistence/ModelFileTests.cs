using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Persistence;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Tests.Stages;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Persistence;

public class ModelFileTests
{
    private static (MLContext Ml, PseudoLabelerTransformer Model, IDataView Test) Trained()
    {
        var ml = new MLContext(seed: 3);
        var train = FewLabelSplit.Apply(TestData.SmallTrain(10), 2, seed: 1).ToDataView(ml);
        return (ml, ml.Dpt().PseudoLabeler(PseudoLabelerTests.TinyOptions()).Fit(train), TestData.SmallTrain(3).ToDataView(ml));
    }

    [Fact]
    public void SaveAndLoadRoundTripExactly()
    {
        var (ml, model, test) = Trained();
        using var folder = TestData.NewFolder();
        var path = folder.File("stage1.dpt");
        model.Save(path);
        using var loaded = ml.Dpt().LoadPseudoLabeler(path, DptDevice.Cpu);

        Assert.Equal(model.Transform(test).GetColumn<float[]>("Score"), loaded.Transform(test).GetColumn<float[]>("Score"));
        Assert.Equal(model.Transform(test).GetColumn<uint>("PseudoLabel"), loaded.Transform(test).GetColumn<uint>("PseudoLabel"));
        Assert.Equal(model.Classifier.Spec, loaded.Classifier.Spec);
        Assert.Equal(model.Classifier.ClassNames, loaded.Classifier.ClassNames);
        Assert.Equal(model.KeepKnownLabels, loaded.KeepKnownLabels);
        model.Dispose();
    }

    [Fact]
    public void MLNetsOwnSaveExplainsWhatToUseInstead()
    {
        var (ml, model, test) = Trained();
        using var folder = TestData.NewFolder();
        var error = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, test.Schema, folder.File("mlnet.zip")));
        Assert.Contains("PseudoLabelerTransformer.Save(path)", error.Message);
        model.Dispose();
    }

    [Fact]
    public void WrongOrDamagedFilesGiveClearErrors()
    {
        var (_, model, _) = Trained();
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder.File("text.dpt"), "hello");
        var notZip = Assert.Throws<InvalidDataException>(() => PseudoLabelerTransformer.Load(folder.File("text.dpt"), DptDevice.Cpu));
        Assert.Contains("not a Microsoft.ML.Dpt model file", notZip.Message);

        var good = folder.File("good.dpt");
        model.Save(good);
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(folder.File("cut.dpt"), bytes[..(bytes.Length / 2)]);
        var cut = Assert.ThrowsAny<InvalidDataException>(() => PseudoLabelerTransformer.Load(folder.File("cut.dpt"), DptDevice.Cpu));
        Assert.Contains("cut.dpt", cut.Message);

        Assert.Throws<FileNotFoundException>(() => PseudoLabelerTransformer.Load(folder.File("absent.dpt"), DptDevice.Cpu));

        // A head gradient weight on a network with its own head would rebuild a different network: refused by name.
        var edited = folder.File("edited.dpt");
        EditNetwork(edited, good, "headGradientWeight", 1);
        var weight = Assert.Throws<InvalidDataException>(() => PseudoLabelerTransformer.Load(edited, DptDevice.Cpu));
        Assert.Contains("head gradient weight 1", weight.Message);
        // So would a feature grid.
        EditNetwork(edited, good, "featureGrid", 2);
        Assert.Contains("feature grid 2", Assert.Throws<InvalidDataException>(() => PseudoLabelerTransformer.Load(edited, DptDevice.Cpu)).Message);
        model.Dispose();
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="target"/> with one value of its manifest's network description changed.</summary>
    private static void EditNetwork(string target, string source, string key, double value) =>
        EditManifest(target, source, manifest => manifest["network"]![key] = value);

    /// <summary>Copies the model file <paramref name="source"/> to <paramref name="target"/> with its manifest changed by <paramref name="edit"/>.</summary>
    internal static void EditManifest(string target, string source, Action<System.Text.Json.Nodes.JsonNode> edit)
    {
        File.Copy(source, target, overwrite: true);
        using var zip = System.IO.Compression.ZipFile.Open(target, System.IO.Compression.ZipArchiveMode.Update);
        var entry = zip.GetEntry(ModelFile.ManifestEntry)!;
        System.Text.Json.Nodes.JsonNode manifest;
        using (var stream = entry.Open()) manifest = System.Text.Json.Nodes.JsonNode.Parse(stream)!;
        edit(manifest);
        entry.Delete();
        using var writer = new StreamWriter(zip.CreateEntry(ModelFile.ManifestEntry).Open());
        writer.Write(manifest.ToJsonString());
    }
}
