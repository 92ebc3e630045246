"""Runtime of ``invented_detail`` on one pair (astronaut, resized to --size, + noise sigma 0.02), one thread:
the three bands alone, the finest band's statistics, and the finest-band channel, the codec cap and the summary.

Usage (from the repository root):
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.planted.runtime [--size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.planted.cases import _resize, load_photo
from qa.metrics.invented.oracle.analysis import invented_from_stats
from qa.metrics.invented.oracle.bands import all_band_stats, luma
from qa.metrics.invented.oracle.codec import codec_excess
from qa.metrics.invented.oracle.fine import all_fine_stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    img = load_photo("astronaut")
    ref = np.ascontiguousarray(img[: args.size, : args.size]) if args.size <= min(img.shape[:2]) \
        else _resize(img, (args.size, args.size))
    out = np.clip(ref + np.random.default_rng(0).normal(0, 0.02, ref.shape), 0, 1).astype(np.float32)
    best = [float("inf")] * 3
    for _ in range(args.repeats):
        y_out, y_ref = luma(out), luma(ref)
        t0 = time.perf_counter()
        stats = all_band_stats(y_out, y_ref)
        invented_from_stats(stats)
        t1 = time.perf_counter()
        fine = all_fine_stats(y_out, y_ref)
        t2 = time.perf_counter()
        invented_from_stats(stats, fine, codec_excess(y_out, y_ref))
        t3 = time.perf_counter()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2), strict=True)]
    print(f"{args.size}x{args.size}, best of {args.repeats}: three bands {best[0]:.2f} s, finest-band statistics "
          f"{best[1]:.2f} s, finest-band channel + codec cap + summary {best[2]:.2f} s; version 3 total {sum(best):.2f} s")


if __name__ == "__main__":
    main()
