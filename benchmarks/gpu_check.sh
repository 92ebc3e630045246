#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the torch invented-detail analysis on CUDA against the CPU and the float64
# oracle (tests), then every per-image metric at 256..4096 px with --device cuda, and a qa run per case on CUDA.
# Never run by the test suite; prepared for a GPU machine (none was lent when this was written, so no CUDA
# numbers are in docs/benchmarks.md yet).
#
#   bash benchmarks/gpu_check.sh [PYTHON]      (default .venv/bin/python; run from the repository root)
#
# Exit status 3: no CUDA device visible to torch.
set -euo pipefail
PY=${1:-.venv/bin/python}
export PYTHONPATH=${PYTHONPATH:-$PWD}
"$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('cuda:', ok, torch.cuda.get_device_name(0) if ok else ''); sys.exit(0 if ok else 3)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
# 1. correctness on the GPU: the CUDA test (CPU vs GPU vs oracle) and the torch-vs-oracle tests
"$PY" -m pytest -q -rs tests/metrics/invented/test_analysis.py tests/metrics/invented/test_fine_band.py tests/metrics/invented/test_speedups.py tests/metrics/invented/test_cache.py -m "not slow"
# 2. timings: every per-image metric at 256..4096 px on the GPU (torchmetrics on the GPU too); the float64 oracle
#    stays on the CPU, so its cells stop at --max-seconds (estimate x4 per doubling)
"$PY" -m benchmarks.metrics_resolution --device cuda --threads 2 --repeats 3 --max-seconds 30
# 3. the engine on CUDA: qa run per case at 256 px (32 default tiles, 2 seeds, every metric), psnr-only run to
#    subtract decode, storage and start-up
DB=$(mktemp -d)
for m in all psnr; do
  args=(); [ "$m" = psnr ] && args=(--metrics psnr)
  /usr/bin/time -f "qa run cuda $m: user %U s, sys %S s, wall %e s" \
    "$PY" -m qa.cli.main run --decoder bicubic --seeds 2 --device cuda --no-progress --db "$DB/$m.duckdb" "${args[@]}" >/dev/null
done
rm -rf "$DB"
