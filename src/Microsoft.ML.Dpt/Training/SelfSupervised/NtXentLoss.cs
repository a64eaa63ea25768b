using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Training.SelfSupervised;

/// <summary>
/// SimCLR's normalised-temperature cross-entropy: for 2N projections where rows i and i + N are two views of one
/// image, each row's positive is its twin and its negatives are the other 2N − 2 rows.
/// </summary>
internal static class NtXentLoss
{
    public static Tensor Compute(Tensor projections, double temperature)
    {
        long twoN = projections.shape[0], n = twoN / 2;
        var z = nn.functional.normalize(projections, dim: 1);
        var similarity = z.matmul(z.t()) / temperature;
        // A row is not its own negative: push the diagonal far below every other logit.
        similarity = similarity - eye(twoN, device: z.device, dtype: z.dtype) * 1e9;
        var twin = cat(new[] { arange(n, twoN, device: z.device), arange(0, n, device: z.device) });
        return nn.functional.cross_entropy(similarity, twin);
    }
}
