"""Peak memory of FID's streaming path for 1,000 and 10,000 images of 64x64: it must be flat in n.

Each n runs in a fresh subprocess. The feature cache is pre-filled with (random) 2048-d vectors for exactly the
images the run will see, so the run exercises everything FID does per image (uint8 conversion, pixel sha256,
cache lookup in DuckDB, running sums, bootstrap reservoir) without spending hours of CPU on Inception forward
passes, which cost the same memory per batch whatever n is. Images are generated on the fly, never held.
The cache is filled by a separate process. Reported: the measuring process's peak RSS (ru_maxrss: imports,
DuckDB and the loop) and the tracemalloc peak of the update/compute loop (Python and numpy allocations).

    .venv/bin/python benchmarks/metrics_fid_memory.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np


def _image(i: int, role: str) -> np.ndarray:
    rng = np.random.default_rng((i, 0 if role == "ref" else 1))
    return rng.random((64, 64, 3), dtype=np.float32)


def child(n: int, tmp: Path, fill: bool) -> None:
    import torch

    from qa.metrics.base import ImageSample
    from qa.metrics.feature_cache import FeatureCache, pixels_sha256
    from qa.metrics.functional.inception import random_state_dict
    from qa.metrics.functional.realism import SmallSampleWarning
    from qa.metrics.realism import FID, InceptionExtractor
    from qa.store.db import Store

    warnings.simplefilter("ignore", SmallSampleWarning)
    weights = tmp / "w.pth"
    if not weights.exists():
        torch.save(random_state_dict(0), weights)
    store = Store(tmp / f"qa-{n}.duckdb")
    ex = InceptionExtractor(weights)
    cache = FeatureCache(store, ex.name, ex.sha256, ex.preprocessing)
    rng = np.random.default_rng(0)
    for start in range(0, n if fill else 0, 1000):  # pre-fill, in its own process (not measured)
        items = {}
        for i in range(start, min(n, start + 1000)):
            for role in ("ref", "cand"):
                items[pixels_sha256(_image(i, role))] = rng.standard_normal(2048).astype(np.float32)
        cache.put(items)
    if fill:
        return
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t = time.perf_counter()
    m = FID(weights_path=weights, store=store, n_bootstrap=0, batch_size=64)
    for i in range(n):
        m.update(ImageSample(f"c{i}", _image(i, "cand"), _image(i, "ref")))
    v = m.compute()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t, "forward": m.extractor().n_forward,
                      "tracemalloc_peak_mb": peak / 2**20, "rss_before_mb": base_rss / 1024,
                      "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "fid": v.value}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--child", type=int, default=0)
    ap.add_argument("--tmp", type=str, default="")
    ap.add_argument("--fill", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.tmp), args.fill)
        return
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-mem-"))
    print(f"# FID streaming memory, 64x64 images; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| images | forward passes | tracemalloc peak MB (update+compute) | peak RSS MB | s |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        subprocess.run([sys.executable, __file__, "--child", str(n), "--tmp", str(tmp), "--fill"], check=True)
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--tmp", str(tmp)],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"| {r['n']} | {r['forward']} | {r['tracemalloc_peak_mb']:.1f} | {r['rss_peak_mb']:.0f} | "
              f"{r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
