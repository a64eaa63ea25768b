using Microsoft.ML.Dpt.Runtime;
using Xunit;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Dpt.Tests.Runtime;

public class DeviceSelectionTests
{
    [Fact]
    public void CpuIsAlwaysThereAndAutoPicksCudaOnlyWhenUsable()
    {
        Assert.Equal(DeviceType.CPU, DeviceSelection.Resolve(DptDevice.Cpu).type);
        Assert.Equal(cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, DeviceSelection.Resolve(DptDevice.Auto).type);
    }

    [Fact]
    public void AskingForCudaWithoutAGpuSaysWhatToInstall()
    {
        if (cuda.is_available())
        {
            Assert.Equal(DeviceType.CUDA, DeviceSelection.Resolve(DptDevice.Cuda).type);
            return;
        }
        var error = Assert.Throws<InvalidOperationException>(() => DeviceSelection.Resolve(DptDevice.Cuda));
        Assert.Contains("TorchSharp-cuda-linux", error.Message);
        Assert.Contains(TorchRuntime.LibTorchDirVariable, error.Message);
    }
}
