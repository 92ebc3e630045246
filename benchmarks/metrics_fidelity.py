"""Per-image fidelity metrics on 512x512 RGB: images per second, qa against torchmetrics / scikit-image.

Same images for every implementation (float32 [0, 1] arrays for qa and scikit-image; the same values as
(1, 3, H, W) float32 tensors for torchmetrics, one image per call as an engine scores them). A warm-up call is
excluded; the median of ``--repeats`` passes over ``--n`` image pairs is reported.

    .venv/bin/python benchmarks/metrics_fidelity.py [--n 8] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch


def _rate(fn, pairs, repeats: int) -> float:  # noqa: ANN001
    fn(*pairs[0])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for a, b in pairs:
            fn(a, b)
        times.append(time.perf_counter() - t)
    return len(pairs) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure as tm_msssim,
    )
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    from qa.metrics.functional import fidelity as F

    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(args.n):
        ref = rng.random((args.size, args.size, 3)).astype(np.float32)
        out = np.clip(ref + 0.05 * rng.standard_normal(ref.shape), 0, 1).astype(np.float32)
        pairs.append((out, ref))
    tpairs = [(torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(b).permute(2, 0, 1)[None])
              for a, b in pairs]
    rows = [
        ("psnr", "qa", _rate(F.psnr, pairs, args.repeats)),
        ("psnr", "torchmetrics", _rate(lambda a, b: tm_psnr(a, b, data_range=1.0), tpairs, args.repeats)),
        ("ssim (qa: gray, MATLAB variant)", "qa", _rate(F.ssim, pairs, args.repeats)),
        ("ssim (torchmetrics: RGB, Gaussian)", "torchmetrics",
         _rate(lambda a, b: tm_ssim(a, b, data_range=1.0), tpairs, args.repeats)),
        ("ssim_skimage (RGB, 7x7 uniform)", "qa", _rate(F.ssim_skimage, pairs, args.repeats)),
        ("ssim_skimage (RGB, 7x7 uniform)", "scikit-image",
         _rate(lambda a, b: structural_similarity(a, b, data_range=1.0, channel_axis=-1), pairs, args.repeats)),
        ("ms_ssim (RGB)", "qa", _rate(F.ms_ssim, pairs, args.repeats)),
        ("ms_ssim (RGB)", "torchmetrics",
         _rate(lambda a, b: tm_msssim(a, b, data_range=1.0, normalize="relu"), tpairs, args.repeats)),
    ]
    print(f"# {args.n} pairs {args.size}x{args.size}, torch threads {args.threads}, median of {args.repeats}; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| metric | implementation | images/s |")
    print("|---|---|---|")
    for name, impl, rate in rows:
        print(f"| {name} | {impl} | {rate:.1f} |")


if __name__ == "__main__":
    main()
