#!/usr/bin/env bash
# Packs the main job and the benchmark into one bundle for the GPU machine (see ../shared/gpu/README.md), small
# enough that full Fashion-MNIST travels with it (the 64 MiB limit): both programs share one self-contained .NET
# runtime; the CPU libtorch, SkiaSharp (only ML.NET's image loading needs it), ONNX Runtime and ResNet-18 (only
# --algorithm resnet18-head needs them), the debugger libraries and the embedded data subset are left out.
# Usage (repo root): bash tests/Microsoft.ML.Dpt.Benchmarks/pack-gpu.sh [--with-data]
# Then on the GPU machine: bash .gpu/run.sh Dpt.Console --preset full --device cuda --data .gpu/fashion-mnist
#                     or: bash .gpu/run.sh Microsoft.ML.Dpt.Benchmarks --device cuda --reference out/reference-results.json
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
mkdir -p .git/info; grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/app
for proj in samples/Dpt.Console/Dpt.Console.csproj tests/Microsoft.ML.Dpt.Benchmarks/Microsoft.ML.Dpt.Benchmarks.csproj; do
  dotnet publish "$proj" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=false -o .gpu/app >.gpu/publish.log 2>&1 \
    || { tail -30 .gpu/publish.log; exit 1; }
done
( cd .gpu/app && rm -rf libtorch*.so libc10*.so libgomp*.so* libshm*.so libbackend_with_compiler.so libjitbackend_test.so \
    libnnapi_backend.so libaoti_custom_ops.so libtorchbind_test.so cpu runtimes/*/native/libtorch* \
    libSkiaSharp.so libmscordaccore.so libmscordbi.so createdump data DnnImageModels \
    libonnxruntime*.so onnxruntime.dll )
tar -C .gpu/app -cJf .gpu/app.tar.xz . && rm -rf .gpu/app
cat > .gpu/run.sh <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: bash .gpu/run.sh PROGRAM [args]; PROGRAM is Dpt.Console or Microsoft.ML.Dpt.Benchmarks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
app=/tmp/dpt-app
if [ ! -d "$app" ]; then mkdir -p "$app"; tar -C "$app" -xJf "$here/app.tar.xz"; fi
torchlib=$(python3 -c 'import torch,os; print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH="$torchlib:${LD_LIBRARY_PATH:-}"
export DPT_LIBTORCH_DIR="$torchlib"
cd "$here/.."
name=$1; shift
exec "$app/$name" "$@"
RUN
chmod +x .gpu/run.sh
if [ "${1:-}" = "--with-data" ]; then
  mkdir -p .gpu/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fashion-mnist/
fi
echo "packed: $(du -sh .gpu | cut -f1) in .gpu (carry it with run's carry: [\".gpu\"])"
