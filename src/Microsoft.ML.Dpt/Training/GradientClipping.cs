using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training;

/// <summary>
/// Clips the global L2 norm of the gradients on the device. TorchSharp's <c>clip_grad_norm_</c> returns the norm
/// as a double, which would make every step wait for the GPU; this does the same scaling without reading it.
/// </summary>
internal static class GradientClipping
{
    public static void ClipGlobalNorm(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Cast<Tensor>().ToArray();
        if (grads.Length == 0) return;
        var total = stack(grads.Select(g => g.pow(2).sum()).ToArray()).sum().sqrt();
        var factor = (maxNorm / (total + 1e-6)).clamp_max(1.0);
        foreach (var g in grads) g.mul_(factor);
    }
}
