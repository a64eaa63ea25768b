using Microsoft.ML.Data;
using Microsoft.ML.Dpt.Data;
using Microsoft.ML.Dpt.Runtime;
using Microsoft.ML.Dpt.Stages;
using Microsoft.ML.Dpt.Tests.Stages;
using Microsoft.ML.Dpt.Training;
using Xunit;

namespace Microsoft.ML.Dpt.Tests.Training;

public class CheckpointTests
{
    private static (MLContext Ml, IDataView Train, IDataView Test) SmallData()
    {
        var ml = new MLContext(seed: 1);
        return (ml, FewLabelSplit.Apply(TestData.SmallTrain(6), 2, seed: 1).ToDataView(ml), TestData.SmallTrain(2).ToDataView(ml));
    }

    private static PseudoLabeler.Options Stage1(string folder, List<TrainingProgress> reports, CancellationToken cancel = default)
    {
        var options = PseudoLabelerTests.TinyOptions();
        options.NumberOfSteps = 10;
        options.LogInterval = 1;
        options.CheckpointInterval = 4;
        options.CheckpointFolder = folder;
        options.Seed = 7;   // a checkpoint belongs to one seed; a second Fit on the same MLContext would draw another
        options.Progress = reports.Add;
        options.CancellationToken = cancel;
        return options;
    }

    private static float[][] Scores(ITransformer model, IDataView test) => model.Transform(test).GetColumn<float[]>("Score").ToArray();

    [Fact]
    public void AStoppedClassifierRunResumesFromItsLastCheckpointAndEndsWithTheSameWeights()
    {
        var (ml, train, test) = SmallData();
        using var whole = TestData.NewFolder();
        using var stopped = TestData.NewFolder();
        using var uninterrupted = ml.Dpt().PseudoLabeler(Stage1(whole.Path, new())).Fit(train);

        using (var cancel = new CancellationTokenSource())
        {
            var firstReports = new List<TrainingProgress>();
            var options = Stage1(stopped.Path, firstReports, cancel.Token);
            options.Progress = p => { firstReports.Add(p); if (p.Step == 6) cancel.Cancel(); };
            Assert.ThrowsAny<OperationCanceledException>(() => ml.Dpt().PseudoLabeler(options).Fit(train));
        }
        var reports = new List<TrainingProgress>();
        using var resumed = ml.Dpt().PseudoLabeler(Stage1(stopped.Path, reports)).Fit(train);

        Assert.Equal(new[] { 5, 6, 7, 8, 9, 10 }, reports.Select(r => r.Step));   // continued after the checkpoint at step 4
        Assert.Equal(Scores(uninterrupted, test), Scores(resumed, test));
    }

    [Fact]
    public void AFinishedRunIsLoadedNotRetrainedAndAChangedOptionTrainsAfresh()
    {
        var (ml, train, test) = SmallData();
        using var folder = TestData.NewFolder();
        using var first = ml.Dpt().PseudoLabeler(Stage1(folder.Path, new())).Fit(train);

        var again = new List<TrainingProgress>();
        var options = Stage1(folder.Path, again);
        options.LogInterval = 5;      // reporting, device and output columns do not change the weights
        options.PseudoLabelColumnName = "Guess";
        using var loaded = ml.Dpt().PseudoLabeler(options).Fit(train);
        Assert.Empty(again);
        Assert.Equal(Scores(first, test), Scores(loaded, test));

        var changed = new List<TrainingProgress>();
        var other = Stage1(folder.Path, changed);
        other.LearningRate = 0.01;
        using var retrained = ml.Dpt().PseudoLabeler(other).Fit(train);
        Assert.Equal(10, changed.Count);
        Assert.Equal(2, Directory.GetFiles(folder.Path, "PseudoLabeler-*.checkpoint").Length);
    }

    [Fact]
    public void ADptRunStoppedInStage2DoesNotRetrainStage1AndMatchesAnUninterruptedRun()
    {
        DualPseudoTrainingOptions Options(string folder, List<string> log, CancellationToken cancel = default)
        {
            var options = new DualPseudoTrainingOptions
            {
                Stage1 = PseudoLabelerTests.TinyOptions(), Stage2 = ConditionalDiffusionAugmenterTests.TinyOptions(),
                Stage3 = new DptClassifierTrainer.Options { NumberOfSteps = 4, BatchSize = 8, UnlabeledRatio = 2, NetworkWidth = 4, LogInterval = 2, Device = DptDevice.Cpu },
                CheckpointFolder = folder,
            };
            options.Stage2.NumberOfSteps = 6;
            options.Stage2.CheckpointInterval = 2;
            options.Stage1.Progress = p => log.Add($"stage1 {p.Step}");
            options.Stage2.Progress = p => log.Add($"stage2 {p.Step}");
            options.Stage2.LogInterval = 1;
            options.Stage2.CancellationToken = cancel;
            return options;
        }
        using var wholeFolder = TestData.NewFolder();
        var (ml, train, test) = SmallData();
        var whole = ml.Dpt().DualPseudoTraining(Options(wholeFolder.Path, new())).Fit(train);

        using var folder = TestData.NewFolder();
        (ml, train, test) = SmallData();   // a fresh MLContext(seed: 1) for each run: the stages draw their seeds from it
        using (var cancel = new CancellationTokenSource())
        {
            var firstLog = new List<string>();
            var stopping = Options(folder.Path, firstLog, cancel.Token);
            stopping.Stage2.Progress = p => { firstLog.Add($"stage2 {p.Step}"); if (p.Step == 3) cancel.Cancel(); };
            Assert.ThrowsAny<OperationCanceledException>(() => ml.Dpt().DualPseudoTraining(stopping).Fit(train));
            Assert.Contains("stage1 6", firstLog);
        }
        var log = new List<string>();
        (ml, train, test) = SmallData();
        var resumed = ml.Dpt().DualPseudoTraining(Options(folder.Path, log)).Fit(train);

        Assert.DoesNotContain(log, l => l.StartsWith("stage1"));                              // stage 1 loaded
        Assert.Equal(new[] { "stage2 3", "stage2 4", "stage2 5", "stage2 6" }, log);          // stage 2 from its step-2 checkpoint
        Assert.Equal(Scores(whole, test), Scores(resumed, test));
    }

    [Fact]
    public void ACheckpointIntervalBelowOneIsAnError()
    {
        var options = PseudoLabelerTests.TinyOptions();
        options.CheckpointInterval = 0;
        Assert.StartsWith("Option CheckpointInterval is 0", Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext().Dpt().PseudoLabeler(options)).Message);
    }
}
