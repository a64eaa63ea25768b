using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Data;

/// <summary>What the augmentations may do to the images of a data set.</summary>
/// <param name="HorizontalFlip">Mirror left-right (fine for clothing and most photographs, wrong for digits).</param>
/// <param name="MaxTranslation">Largest shift as a fraction of the side (0.125 = 3.5 px at 28x28).</param>
/// <param name="CutoutFraction">Largest side of the Cutout square as a fraction of the image side.</param>
public sealed record AugmentationPolicy(bool HorizontalFlip = true, double MaxTranslation = 0.125, double CutoutFraction = 0.5);

/// <summary>
/// Weak and strong augmentation done in batches on the tensors' device, with TorchSharp's global generator.
/// </summary>
/// <remarks>
/// Weak: random flip and translation (one affine resampling). Strong (FixMatch's RandAugment + Cutout, batched):
/// each of 12 operations is applied to an image with probability 2/12, so that on average two operations are
/// applied, each at a random magnitude; the geometric ones (rotate, shear x/y, translate x/y) are folded into the
/// same single affine resampling as the weak view, the pixel ones (auto-contrast, brightness, contrast, sharpness,
/// posterize, solarize, identity) are blended in with per-image masks; then one Cutout square. No colour
/// operations, so grayscale data stays meaningful.
/// </remarks>
public sealed class Augmentation
{
    private const int OperationCount = 12;
    private const double OperationProbability = 2.0 / OperationCount;

    /// <summary>Creates the augmentation for a policy.</summary>
    public Augmentation(AugmentationPolicy policy) => Policy = policy;

    /// <summary>The policy in force.</summary>
    public AugmentationPolicy Policy { get; }

    /// <summary>Weak view: flip and translate.</summary>
    public Tensor Weak(Tensor images) => InFloat32(images, x => Resample(x, BaseAffine(x.shape[0], x.device)));

    /// <summary>Strong view: weak, plus RandAugment-style operations and Cutout.</summary>
    public Tensor Strong(Tensor images) => InFloat32(images, x =>
    {
        long n = x.shape[0];
        var theta = BaseAffine(n, x.device).matmul(GeometricOperations(n, x.device));
        return Cutout(PixelOperations(Resample(x, theta)));
    });

    /// <summary>
    /// Contrastive (SimCLR) view: a random resized crop keeping [<paramref name="minCropScale"/>, 1] of the area at an
    /// aspect ratio in [3/4, 4/3], resampled to full size, a flip where the policy allows it, then with probability
    /// 0.8 brightness and contrast jitter (factors in [0.6, 1.4]), SimCLR's colour jitter for grayscale images.
    /// </summary>
    public Tensor Contrastive(Tensor images, double minCropScale) => InFloat32(images, x => ContrastiveView(x, minCropScale));

    private Tensor ContrastiveView(Tensor images, double minCropScale)
    {
        long n = images.shape[0];
        var device = images.device;
        var area = minCropScale + rand(n, device: device) * (1 - minCropScale);
        var ratio = exp((rand(n, device: device) * 2 - 1) * Math.Log(4.0 / 3));
        var scaleX = (area * ratio).sqrt().clamp_max(1);
        var scaleY = (area / ratio).sqrt().clamp_max(1);
        var flip = Policy.HorizontalFlip ? where(rand(n, device: device) < 0.5, -1f, 1f) : ones(n, device: device);
        var theta = zeros(n, 3, 3, device: device);
        theta[.., 0, 0] = scaleX * flip;
        theta[.., 1, 1] = scaleY;
        theta[.., 0, 2] = (rand(n, device: device) * 2 - 1) * (1 - scaleX);   // the crop stays inside the image
        theta[.., 1, 2] = (rand(n, device: device) * 2 - 1) * (1 - scaleY);
        theta[.., 2, 2] = ones(n, device: device);
        var x = Resample(images, theta);

        var jitter = (rand(n, 1, 1, 1, device: device) < 0.8).to(x.dtype);
        Tensor Factor() => 1 + jitter * (rand(n, 1, 1, 1, device: device) * 0.8 - 0.4);
        x = (x * Factor()).clamp(0, 1);
        var mean = x.mean(new long[] { 1, 2, 3 }, keepdim: true);
        return (mean + (x - mean) * Factor()).clamp(0, 1);
    }

    /// <summary>
    /// Runs a view in fp32 and returns it in the images' precision: the random factors and sampling grids are fp32,
    /// and a bf16 network must get bf16 inputs.
    /// </summary>
    private static Tensor InFloat32(Tensor images, Func<Tensor, Tensor> view)
    {
        using var scope = NewDisposeScope();
        var input = images.dtype == ScalarType.Float32 ? images : images.to(ScalarType.Float32);
        return view(input).to(images.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Per-image 2x3 affine matrices (in the [-1, 1] coordinates of affine_grid) for flip and translation.</summary>
    private Tensor BaseAffine(long n, Device device)
    {
        var flip = Policy.HorizontalFlip ? where(rand(n, device: device) < 0.5, -1f, 1f) : ones(n, device: device);
        var shift = (rand(n, 2, device: device) * 2 - 1) * (2 * Policy.MaxTranslation);
        var theta = zeros(n, 3, 3, device: device);
        theta[.., 0, 0] = flip;
        theta[.., 1, 1] = ones(n, device: device);
        theta[.., 0, 2] = shift[.., 0];
        theta[.., 1, 2] = shift[.., 1];
        theta[.., 2, 2] = ones(n, device: device);
        return theta;
    }

    /// <summary>Rotation (up to 30 degrees), shear x and y (up to 0.3), translation x and y (up to the policy's
    /// limit, on top of the weak shift), each with probability 2/12.</summary>
    private Tensor GeometricOperations(long n, Device device)
    {
        Tensor Apply(Tensor magnitude) => magnitude * (rand(n, device: device) < OperationProbability);
        Tensor Signed(double max) => (rand(n, device: device) * 2 - 1) * max;
        var angle = Apply(Signed(Math.PI / 6));
        var shearX = Apply(Signed(0.3));
        var shearY = Apply(Signed(0.3));
        var moveX = Apply(Signed(2 * Policy.MaxTranslation));   // [-1, 1] coordinates span two sides
        var moveY = Apply(Signed(2 * Policy.MaxTranslation));
        var cos = angle.cos();
        var sin = angle.sin();
        var m = zeros(n, 3, 3, device: device);
        m[.., 0, 0] = cos - sin * shearY;
        m[.., 0, 1] = -sin + cos * shearX;
        m[.., 1, 0] = sin + cos * shearY;
        m[.., 1, 1] = cos + sin * shearX;
        m[.., 0, 2] = moveX;
        m[.., 1, 2] = moveY;
        m[.., 2, 2] = ones(n, device: device);
        return m;
    }

    private static Tensor Resample(Tensor images, Tensor theta)
    {
        var grid = nn.functional.affine_grid(theta[.., ..2, ..], images.shape, align_corners: false);
        return nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
    }

    private static Tensor PixelOperations(Tensor x)
    {
        long n = x.shape[0];
        var device = x.device;
        Tensor Mask() => (rand(n, 1, 1, 1, device: device) < OperationProbability).to(x.dtype);
        Tensor Factor() => 0.1 + rand(n, 1, 1, 1, device: device) * 1.8;   // enhancement factor in [0.1, 1.9]
        Tensor Blend(Tensor current, Tensor changed) => current + Mask() * (changed - current);

        var min = x.amin(new long[] { 1, 2, 3 }, keepdim: true);
        var max = x.amax(new long[] { 1, 2, 3 }, keepdim: true);
        x = Blend(x, (x - min) / (max - min).clamp_min(1e-3));                       // auto-contrast
        x = Blend(x, (x * Factor()).clamp(0, 1));                                      // brightness
        var mean = x.mean(new long[] { 1, 2, 3 }, keepdim: true);
        x = Blend(x, (mean + (x - mean) * Factor()).clamp(0, 1));                      // contrast
        var smooth = Smooth(x);
        x = Blend(x, (smooth + (x - smooth) * Factor()).clamp(0, 1));                  // sharpness
        var levels = pow(2.0, randint(4, 9, new long[] { n, 1, 1, 1 }, device: device).to(x.dtype));
        x = Blend(x, (x * (levels - 1)).round() / (levels - 1));                       // posterize to 4-8 bits
        var threshold = rand(n, 1, 1, 1, device: device);
        x = Blend(x, where(x >= threshold, 1 - x, x));                                 // solarize
        return x;                                                                      // (identity is the 12th operation)
    }

    /// <summary>PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13), the blur that its sharpness enhancement uses.</summary>
    private static Tensor Smooth(Tensor x)
    {
        long channels = x.shape[1];
        var kernel = ones(3, 3, device: x.device, dtype: x.dtype);
        kernel[1, 1] = tensor(5f, device: x.device, dtype: x.dtype);
        kernel = (kernel / 13).expand(channels, 1, 3, 3).contiguous();
        return nn.functional.conv2d(nn.functional.pad(x, new long[] { 1, 1, 1, 1 }, PaddingModes.Replicate), kernel, groups: channels);
    }

    private Tensor Cutout(Tensor x)
    {
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var device = x.device;
        var side = rand(n, 1, 1, device: device) * Policy.CutoutFraction;
        var cy = rand(n, 1, 1, device: device);
        var cx = rand(n, 1, 1, device: device);
        var ys = (arange(h, device: device, dtype: x.dtype) + 0.5f) / h;
        var xs = (arange(w, device: device, dtype: x.dtype) + 0.5f) / w;
        var inside = ((ys.view(1, h, 1) - cy).abs() <= side / 2) & ((xs.view(1, 1, w) - cx).abs() <= side / 2);
        return where(inside.unsqueeze(1), 0.5f, x);   // a grey square, as FixMatch's Cutout
    }
}
