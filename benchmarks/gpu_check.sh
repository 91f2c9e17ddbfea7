#!/usr/bin/env bash
# One-command GPU check: install axhw on a bare CUDA machine, run the GPU tests, the kernel
# benchmark and the end-to-end emulation benchmark.  Target: under 6 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh            # from the repository root (or anywhere)
#
# Needs a Python with torch (CUDA), timm, numba + numba-cuda, scikit-learn and pytest (the
# GPU image has them).  numba 0.68 refuses numpy >= 2.5: when `import numba` fails, a
# numpy 2.4 cp312 wheel is taken from .whl/ (download it where pip works, see docs/gpu.md)
# and put first on PYTHONPATH.  axhw itself is installed editable, without dependencies.
# Logs (one per step) and kernels.json go to $OUT (the device tool's output folder, which
# returns at most 8 files) or out/gpu_check.
# Exit status: 0 when every step passed, else the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
start=$(date +%s)
failed=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, log to $OUT/NAME.log, count failures
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(($(date +%s) - start)) s elapsed)"
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "=== $name FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
}

if ! "$PY" -c "import numba" >/dev/null 2>&1; then
    wheel=$(ls .whl/numpy-2.4*-cp3*.whl 2>/dev/null | head -n 1)
    if [ -z "$wheel" ]; then
        echo "numba does not import with this numpy and no numpy 2.4 wheel is in .whl/ (see docs/gpu.md)"
        "$PY" -c "import numba" 2>&1 | tail -n 2
        exit 1
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/axhw-site "$wheel" || exit 1
    export PYTHONPATH=/tmp/axhw-site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >/tmp/axhw-install.log 2>&1 || { cat /tmp/axhw-install.log; exit 1; }
"$PY" - <<'EOF'  # the versions and device, into the output
import numba, numpy, timm, torch
from numba import cuda
print(f"device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE'}")
print(f"torch {torch.__version__}, numpy {numpy.__version__}, numba {numba.__version__}, timm {timm.__version__}, numba sees a GPU: {cuda.is_available()}")
EOF

# GPU tests: every kernel test (CUDA tensors in place, several ragged tiles, PTX launch budget), then
# the emulator tests (GPU/CPU agreement, devices, layers, timm ports); slow CPU-only tests are skipped.
step tests_kernels 90 env AXHW_SLOW=1 "$PY" -m pytest -q -p no:cacheprovider tests/test_kernels.py
step tests_emulator 90 "$PY" -m pytest -q -p no:cacheprovider tests/test_emulator_layers.py tests/test_emulator_quantization.py tests/test_emulator_convert.py tests/test_emulator_cli.py
# ViT-B shapes, batch 64: new and previous LUT kernel, TransAxx-style baseline, low-rank path, GEMMs.
step kernels 75 "$PY" benchmarks/kernels.py --gpu --repeats 5 --json "$OUT/kernels.json"
# End to end, batch 64: emulated / fp32 time, copies, host syncs, launches, LUT-kernel share.
step emulate_deit_tiny 45 "$PY" benchmarks/emulate.py --device cuda --batch 64 --repeats 5 --profile
step emulate_vit_b 45 "$PY" benchmarks/emulate.py --model vit_base_patch16_224 --multipliers exact,trunc_k6 --device cuda --batch 64 --repeats 3 --profile

echo "=== done in $(($(date +%s) - start)) s, $failed failed step(s); logs in $OUT"
exit "$failed"
