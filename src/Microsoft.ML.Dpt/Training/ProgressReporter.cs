using System.Diagnostics;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// What every training loop does about progress: sums its per-step losses on the device (no host sync in the step),
/// and every <c>LogInterval</c> steps and at the last step reads the means once, stops on a non-finite loss with a
/// message that says what to change, and sends a <see cref="TrainingProgress"/>.
/// </summary>
internal sealed class ProgressReporter : IDisposable
{
    private readonly string _stage;
    private readonly int _totalSteps, _interval, _supervisedColumn, _maskColumn;
    private readonly double _imagesPerStep;
    private readonly Action<TrainingProgress> _report;
    private readonly Func<float, int, string> _diverged;
    private readonly Tensor _sums;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _lastStep;
    private double _lastSeconds;

    /// <param name="stage">Name in the reports.</param>
    /// <param name="firstStep">Steps already done (a resumed run).</param>
    /// <param name="totalSteps">Steps planned.</param>
    /// <param name="interval">Steps between reports.</param>
    /// <param name="imagesPerStep">Images (all views) one step processes.</param>
    /// <param name="columns">Values a step adds: the total loss first.</param>
    /// <param name="supervisedColumn">Which column is the supervised loss; −1 for none.</param>
    /// <param name="maskColumn">Which column is the mask rate; −1 for none.</param>
    /// <param name="device">Where the sums live.</param>
    /// <param name="report">Receives the reports.</param>
    /// <param name="diverged">The error message for a non-finite mean loss at a step.</param>
    public ProgressReporter(string stage, int firstStep, int totalSteps, int interval, double imagesPerStep, int columns,
        int supervisedColumn, int maskColumn, Device device, Action<TrainingProgress> report, Func<float, int, string> diverged)
    {
        _stage = stage;
        _lastStep = firstStep;
        _totalSteps = totalSteps;
        _interval = interval;
        _imagesPerStep = imagesPerStep;
        _supervisedColumn = supervisedColumn;
        _maskColumn = maskColumn;
        _report = report;
        _diverged = diverged;
        _sums = zeros(columns, device: device).DetachFromDisposeScope();
    }

    /// <summary>Adds one step's values (a device tensor with one entry per column); no host sync.</summary>
    public void Add(Tensor values)
    {
        using var _ = no_grad();
        _sums.add_(values.reshape(-1));
    }

    /// <summary>Reports when <paramref name="stepsDone"/> completes an interval or the run.</summary>
    public void AfterStep(int stepsDone, double learningRate)
    {
        if (stepsDone % _interval != 0 && stepsDone != _totalSteps) return;
        int done = stepsDone - _lastStep;
        using var mean = _sums / done;
        using var onHost = mean.cpu();   // the one host sync per report
        var means = onHost.data<float>().ToArray();
        _sums.zero_();
        if (!float.IsFinite(means[0])) throw new InvalidOperationException(_diverged(means[0], stepsDone));
        double seconds = _clock.Elapsed.TotalSeconds;
        _report(new TrainingProgress(_stage, stepsDone, _totalSteps, means[0], Column(means, _supervisedColumn), Column(means, _maskColumn),
            learningRate, done * _imagesPerStep / Math.Max(seconds - _lastSeconds, 1e-9), _clock.Elapsed));
        _lastStep = stepsDone;
        _lastSeconds = seconds;
    }

    private static double Column(float[] means, int column) => column < 0 ? double.NaN : means[column];

    /// <inheritdoc/>
    public void Dispose() => _sums.Dispose();
}
