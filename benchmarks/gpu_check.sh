#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: every default per-image metric on CUDA against the CPU (tests), the torch
# invented-detail analysis on CUDA against the CPU and the float64 oracle (tests), every per-image metric at
# 256..4096 px with --device cuda, a qa run per case on CUDA at 256 px, and the whole qa run per case at 2048 px
# on CUDA, which must beat the numbers written below (step 4; exit status 1 when it does not).
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
# 1. correctness on the GPU: every default per-image metric with device=cuda gives the CPU's rows; the CUDA test
#    of the analysis (CPU vs GPU vs oracle) and the torch-vs-oracle tests
"$PY" -m pytest -q -rs tests/metrics/test_device_paths.py tests/metrics/test_fidelity_torch.py tests/metrics/test_batched_pairs.py
#    and the engine on CUDA: the shard scored as one group (every metric batched over its cases), the CPU's rows
"$PY" -m pytest -q -rs tests/engine/test_scoring_groups.py
"$PY" -m pytest -q -rs tests/metrics/invented/test_analysis.py tests/metrics/invented/test_fine_band.py tests/metrics/invented/test_speedups.py tests/metrics/invented/test_cache.py -m "not slow"
# 2. timings: every per-image metric at 256..4096 px on the GPU (torchmetrics on the GPU too); the float64 oracle
#    stays on the CPU, so its cells stop at --max-seconds (estimate x4 per doubling)
"$PY" -m benchmarks.metrics_resolution --device cuda --threads 2 --repeats 3 --max-seconds 30
# 3. the engine on CUDA: qa run per case at 256 px (32 default tiles, 2 seeds, every metric; the 32 cases one
#    scoring group, so each batching metric makes one call per pair kind), psnr-only run to subtract decode,
#    storage and start-up
DB=$(mktemp -d)
for m in all psnr; do
  args=(); [ "$m" = psnr ] && args=(--metrics psnr)
  /usr/bin/time -f "qa run cuda $m: user %U s, sys %S s, wall %e s" \
    "$PY" -m qa.cli.main run --decoder bicubic --seeds 2 --device cuda --no-progress --db "$DB/$m.duckdb" "${args[@]}" >/dev/null
done
rm -rf "$DB"
# 4. the whole harness at release resolution on CUDA: qa run --device cuda per case at 2048 px (4 photos,
#    bicubic, 2 seeds, every default metric minus a psnr-only run: decode, thumbnails, storage and start-up
#    excluded), wall seconds, median of 3 after a warm-up. The numbers to beat: on this project's 2-core CPU
#    (docs/benchmarks.md, issue 29, fourth and fifth rounds, cold store) the same per-case metrics cost 6.2-6.6
#    CPU s before issue 29 (92eadaa) and 4.4-4.8 after it; the GPU must bring them under GPU_MUST_BEAT_S wall
#    seconds per case.
GPU_MUST_BEAT_S=1.0
SET=$(mktemp -d)
"$PY" -m benchmarks.release_set --out "$SET/release2048" --side 2048
"$PY" -m benchmarks.run_per_case --tree now=. --reference-set "$SET/release2048" --small 1 --threads 2 \
  --repeats 3 --stat median --device cuda --clock wall --must-beat "$GPU_MUST_BEAT_S"
rm -rf "$SET"
