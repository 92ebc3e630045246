"""Runtime of ``invented_detail`` on one 256x256 pair (astronaut crop + noise), best and median of 5, one thread.

Usage (from the repository root): ``OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.planted.runtime``
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.planted.cases import load_photo
from qa.invented.shared import CACHE
from qa.metrics.base import ImageSample
from qa.registries import METRICS


def main(repeats: int = 5) -> tuple[float, float]:
    """(fastest, median) seconds of one ``compute`` with the per-pair cache cleared."""
    ref = load_photo("astronaut")[:256, :256].copy()
    out = np.clip(ref + np.random.default_rng(0).normal(0, 0.02, ref.shape), 0, 1).astype(np.float32)
    metric = METRICS.factory("invented_detail")()
    times = []
    for _ in range(repeats):
        CACHE.clear()
        t0 = time.perf_counter()
        metric.compute(ImageSample("c", out, reference=ref))
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


if __name__ == "__main__":
    fastest, median = main()
    print(f"METRICS.factory('invented_detail')().compute, 256x256: min {fastest:.3f} s, median {median:.3f} s")
