using TorchSharp;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>Where a trainer runs.</summary>
public enum DptDevice
{
    /// <summary>CUDA when a CUDA device is usable, else the CPU.</summary>
    Auto,
    /// <summary>The CPU.</summary>
    Cpu,
    /// <summary>A CUDA GPU; an error when none is usable.</summary>
    Cuda,
}

/// <summary>Turns a <see cref="DptDevice"/> choice into a TorchSharp device, with the settings each device wants.</summary>
public static class DeviceSelection
{
    /// <summary>Resolves <paramref name="choice"/>; loads the native runtime first.</summary>
    /// <exception cref="InvalidOperationException">CUDA was asked for and none is usable; the message says what to install.</exception>
    public static torch.Device Resolve(DptDevice choice, Action<string>? log = null)
    {
        TorchRuntime.EnsureLoaded(log);
        bool cuda = choice switch
        {
            DptDevice.Cpu => false,
            DptDevice.Cuda => torch.cuda.is_available() ? true : throw new InvalidOperationException(
                "Device = Cuda was requested but no CUDA device is usable. Reference a TorchSharp CUDA package in the app " +
                "(for example TorchSharp-cuda-linux or TorchSharp-cuda-windows, version 0.107.0) instead of TorchSharp-cpu, " +
                $"or set {TorchRuntime.LibTorchDirVariable} to a CUDA build of libtorch such as PyTorch's torch/lib; also check the NVIDIA driver (nvidia-smi)."),
            _ => torch.cuda.is_available(),
        };
        if (!cuda) return torch.CPU;
        // fp32 matmul and convolution on tensor cores (TF32): the usual PyTorch training setting on Ampere and later.
        torch.backends.cuda.matmul.allow_tf32 = true;
        torch.backends.cudnn.allow_tf32 = true;
        return torch.CUDA;
    }
}
