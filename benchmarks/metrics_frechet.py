"""Frechet distance of two 2048-d Gaussian statistics: qa's eigenvalue form against scipy sqrtm and torchmetrics.

Statistics are the covariances of 4096 random 2048-d features (full rank), float64. Reports seconds (median of
``--repeats``) and the relative difference of each value from scipy's sqrtm form.

    .venv/bin/python benchmarks/metrics_frechet.py [--dim 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from scipy import linalg


def _time(fn, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    value = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    ap.add_argument("--sqrtm-repeats", type=int, default=1, help="scipy sqrtm is slow: fewer timed repeats")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from torchmetrics.image.fid import _compute_fid

    from qa.metrics.functional.realism import frechet_distance

    rng = np.random.default_rng(0)
    d = args.dim
    f1 = rng.standard_normal((2 * d, d))
    f2 = rng.standard_normal((2 * d, d)) @ (np.eye(d) + 0.01 * rng.standard_normal((d, d))) + 0.1
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)

    def scipy_form() -> float:
        covmean = linalg.sqrtm(s1 @ s2).real
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

    t = lambda a: torch.from_numpy(a)  # noqa: E731
    rows = [
        ("qa (Cholesky F, eigvalsh of F^T S2 F)", *_time(lambda: frechet_distance(mu1, s1, mu2, s2), args.repeats)),
        ("torchmetrics (eigvals of S1 S2)",
         *_time(lambda: float(_compute_fid(t(mu1), t(s1), t(mu2), t(s2))), args.repeats)),
        ("scipy.linalg.sqrtm", *_time(scipy_form, args.sqrtm_repeats)),
    ]
    ref = rows[2][2]
    print(f"# dim {d}, median of {args.repeats}; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| implementation | seconds | value | rel. diff vs sqrtm |")
    print("|---|---|---|---|")
    for name, sec, val in rows:
        print(f"| {name} | {sec:.2f} | {val:.6f} | {abs(val - ref) / abs(ref):.1e} |")


if __name__ == "__main__":
    main()
