"""FID wall time, qa against torchmetrics' FrechetInceptionDistance, side by side on the same images and weights.

The official Inception file is not available here, so both use the same seeded-random Inception weights in the
official layout (the network and its cost are the same). Both use the TF1 bilinear resizer (torchmetrics with
``antialias=False``), uint8 input, batches of ``--batch``, the same torch thread count. qa runs without
bootstrap (``n_bootstrap=0``; torchmetrics has none) and with a fresh DuckDB store. Phases:

1. first run: references + candidates A, both tools compute everything;
2. new candidates B against the same references: torchmetrics recomputes the references, qa reads them from its
   feature cache;
3. rerun of 2 with nothing changed: qa must run no forward pass.

    .venv/bin/python benchmarks/metrics_fid.py [--n 64] [--size 64] [--batch 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _images(seed: int, n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((n, size // 8, size // 8, 3))
    return np.repeat(np.repeat(base, 8, 1), 8, 2).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images per set")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

    from qa.metrics.base import ImageSample
    from qa.metrics.functional.inception import random_state_dict
    from qa.metrics.functional.realism import SmallSampleWarning
    from qa.metrics.realism import FID
    from qa.store.db import Store

    warnings.simplefilter("ignore", SmallSampleWarning)
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-fid-"))
    weights = tmp / "random_inception.pth"
    torch.save(random_state_dict(seed=0), weights)
    store = Store(tmp / "qa.duckdb")
    ref, cand_a, cand_b = (_images(s, args.n, args.size) for s in (1, 2, 3))
    u8 = lambda a: torch.from_numpy(np.floor(a * 255 + 0.5).astype(np.uint8)).permute(0, 3, 1, 2)  # noqa: E731

    def torchmetrics_run(cand: np.ndarray) -> tuple[float, float]:
        t = time.perf_counter()
        net = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights),
                                 antialias=False)
        m = FrechetInceptionDistance(feature=net, normalize=False)
        r, c = u8(ref), u8(cand)
        for k in range(0, args.n, args.batch):
            m.update(r[k:k + args.batch], real=True)
            m.update(c[k:k + args.batch], real=False)
        return time.perf_counter() - t, float(m.compute())

    def qa_run(cand: np.ndarray) -> tuple[float, float, int]:
        t = time.perf_counter()
        m = FID(weights_path=weights, store=store, n_bootstrap=0, batch_size=args.batch)
        for i in range(args.n):
            m.update(ImageSample(f"c{i}", cand[i], ref[i]))
        v = m.compute().value
        return time.perf_counter() - t, v, m.extractor().n_forward

    rows = []
    tm1, v_tm1 = torchmetrics_run(cand_a)
    qa1, v_qa1, f1 = qa_run(cand_a)
    rows.append(("1 first run (refs + A)", tm1, v_tm1, qa1, v_qa1, f1))
    tm2, v_tm2 = torchmetrics_run(cand_b)
    qa2, v_qa2, f2 = qa_run(cand_b)
    rows.append(("2 new candidates B, same refs", tm2, v_tm2, qa2, v_qa2, f2))
    qa3, v_qa3, f3 = qa_run(cand_b)
    rows.append(("3 rerun of 2, nothing changed", float("nan"), float("nan"), qa3, v_qa3, f3))
    print(f"# {args.n} refs + {args.n} candidates, {args.size}x{args.size}, batch {args.batch}, torch threads "
          f"{args.threads}; {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.1f} at end")
    print("| phase | torchmetrics s | torchmetrics FID | qa s | qa FID | qa forward passes | qa speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, tt, vt, tq, vq, fw in rows:
        speed = f"{tt / tq:.2f}x" if np.isfinite(tt) else "-"
        tm_s = f"{tt:.1f}" if np.isfinite(tt) else "-"
        tm_v = f"{vt:.6g}" if np.isfinite(vt) else "-"
        print(f"| {name} | {tm_s} | {tm_v} | {tq:.1f} | {vq:.6g} | {fw} | {speed} |")


if __name__ == "__main__":
    main()
