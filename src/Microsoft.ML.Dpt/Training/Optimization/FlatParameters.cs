using System.Runtime.CompilerServices;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.Optimization;

/// <summary>
/// A module's parameters (and, once an optimiser attaches them, their gradients) re-laid as views into one contiguous
/// buffer each, so that optimiser, clipping and EMA arithmetic runs as a handful of large kernels instead of several
/// per tensor.
/// </summary>
/// <remarks>
/// Why: every TorchSharp call costs host time (about 15 µs on the benchmark machine against about 3 µs for a
/// PyTorch call), and a U-Net has some 250 parameter tensors, so per-tensor AdamW, clipping and EMA cost ~25 ms of
/// host time a step, more than the GPU needs for the forward pass. Autograd accumulates into an existing
/// gradient in place, so the gradient views keep receiving the gradients as long as nothing sets them to null;
/// <see cref="FlatOptimizer.ZeroGrad"/> zeroes the buffer instead. Flatten after the module has been moved to its
/// device and precision: <c>Module.to</c> gives parameters new storage, which leaves the buffer behind.
/// </remarks>
internal sealed class FlatParameters
{
    private static readonly ConditionalWeakTable<nn.Module, FlatParameters> Flattened = new();
    private readonly long[] _offsets;

    private FlatParameters(Parameter[] parameters)
    {
        if (parameters.Length == 0) throw new ArgumentException("The module has no parameters to optimise.", nameof(parameters));
        var first = parameters[0];
        if (parameters.Any(p => p.dtype != first.dtype || p.device_type != first.device_type || p.device_index != first.device_index))
            throw new ArgumentException($"All parameters of a module must share one precision and device to be flattened; found {string.Join(", ", parameters.Select(p => $"{p.dtype}@{p.device}").Distinct())}. Move the whole module with .to() first.", nameof(parameters));
        Parameters = parameters;
        _offsets = new long[parameters.Length];
        long total = parameters.Sum(p => p.numel());
        Values = empty(total, first.dtype, first.device).DetachFromDisposeScope();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long offset = 0;
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            _offsets[i] = offset;
            var values = Slice(Values, i);
            values.copy_(p);
            p.set_(values);   // returns p itself: not to be disposed
            offset += p.numel();
        }
    }

    private Tensor? _gradients;

    /// <summary>Gives the gradients the same layout, once: an optimiser calls this before the first backward pass;
    /// a network that only holds an average (EMA) never needs the buffer.</summary>
    public void AttachGradients()
    {
        if (_gradients is not null) return;
        _gradients = zeros_like(Values).DetachFromDisposeScope();
        using var scope = NewDisposeScope();
        for (int i = 0; i < Parameters.Count; i++) Parameters[i].grad = Slice(_gradients, i);
    }

    /// <summary>Parameter <paramref name="index"/>'s part of a flat buffer, in its shape.</summary>
    private Tensor Slice(Tensor buffer, int index)
    {
        var p = Parameters[index];
        return buffer.narrow(0, _offsets[index], p.numel()).view(p.shape);
    }

    /// <summary>The parameters, in the module's order, now views into <see cref="Values"/>.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>All parameter values, one after the other.</summary>
    public Tensor Values { get; }

    /// <summary>All gradients, laid out as <see cref="Values"/> (after <see cref="AttachGradients"/>).</summary>
    public Tensor Gradients => _gradients ?? throw new InvalidOperationException("The gradients are not laid out in the flat buffer; call AttachGradients first.");

    /// <summary>The flat layout of <paramref name="module"/>'s parameters, made on first use and shared afterwards
    /// (the optimiser and the EMA of one network must see the same buffer).
    /// A module moved with <c>.to()</c> since then has parameters in new storage and is flattened again.</summary>
    public static FlatParameters Of(nn.Module module)
    {
        var parameters = module.parameters().ToArray();
        if (Flattened.TryGetValue(module, out var flat) && flat.Backs(parameters)) return flat;
        flat = new FlatParameters(parameters);
        Flattened.AddOrUpdate(module, flat);
        return flat;
    }

    /// <summary>Whether these parameters still live in this buffer: same count, precision, device and offsets
    /// (a module moved away and back has every parameter at offset 0 of its own storage).</summary>
    private bool Backs(Parameter[] parameters) =>
        parameters.Length == Parameters.Count
        && parameters.Select((p, i) => p.dtype == Values.dtype && p.device_type == Values.device_type
            && p.device_index == Values.device_index && p.storage_offset() == _offsets[i]).All(ok => ok);
}
