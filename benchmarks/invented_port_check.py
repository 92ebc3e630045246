"""The torch port against the float64 oracle on every image of the planted benchmark.

For each split: the largest absolute difference of ``invented_detail`` and ``lost_detail`` over all cases,
the largest map difference, the pixels whose side of the IoU threshold differs, and the headline numbers of
:func:`benchmarks.planted.evaluate.report` (AUROC, mean map IoU, per-kind means) computed both ways.

    .venv/bin/python -m benchmarks.invented_port_check [--splits tune,heldout] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

import numpy as np
import torch

from benchmarks.planted.cases import build
from benchmarks.planted.evaluate import DEFAULT_THRESHOLD, report
from qa.metrics.invented import functional as F
from qa.metrics.invented import torch_analysis as A


def _rows(split: str) -> tuple[list[dict[str, object]], list[dict[str, object]], dict[str, float]]:
    oracle, port = [], []
    t_oracle = t_port = 0.0
    for c in build(split):
        t = time.perf_counter()
        want = F.invented_detail(c.output, c.reference)
        t_oracle += time.perf_counter() - t
        t = time.perf_counter()
        batch = A.analyse(torch.from_numpy(c.output).permute(2, 0, 1)[None], torch.from_numpy(c.reference).permute(2, 0, 1)[None])
        got = batch.result(0)
        t_port += time.perf_counter() - t
        for rows, res in ((oracle, want), (port, got)):
            rows.append({"name": c.name, "kind": c.kind, "group": c.group, "mask": c.mask, "map": res.map,
                         "invented_detail": res.invented, "lost_detail": res.lost,
                         "distortion": 0.0, "psnr": 0.0, "ssim": 0.0})
    return oracle, port, {"oracle_s": t_oracle, "port_s": t_port}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", default="tune,heldout")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    worst = 0.0
    changed = 0
    for split in args.splits.split(","):
        oracle, port, times = _rows(split)
        d_inv = max(abs(float(a["invented_detail"]) - float(b["invented_detail"])) for a, b in zip(oracle, port, strict=True))  # type: ignore[arg-type]
        d_lost = max(abs(float(a["lost_detail"]) - float(b["lost_detail"])) for a, b in zip(oracle, port, strict=True))  # type: ignore[arg-type]
        d_map = max(float(np.abs(np.asarray(a["map"]) - np.asarray(b["map"])).max()) for a, b in zip(oracle, port, strict=True))
        flips = sum(int(((np.asarray(a["map"]) > DEFAULT_THRESHOLD) != (np.asarray(b["map"]) > DEFAULT_THRESHOLD)).sum())
                    for a, b in zip(oracle, port, strict=True))
        heads = []
        for rows in (oracle, port):
            with contextlib.redirect_stdout(io.StringIO()):
                heads.append(report(rows, DEFAULT_THRESHOLD))
        worst = max(worst, d_inv, d_lost)
        print(f"split {split}: {len(oracle)} cases; oracle {times['oracle_s']:.0f} s, torch {times['port_s']:.0f} s "
              f"(1 image per call, {args.threads} thread(s))")
        print(f"  max |invented_detail diff| {d_inv:.2e}, max |lost_detail diff| {d_lost:.2e}, max |map diff| "
              f"{d_map:.2e} luma, pixels on the other side of the {DEFAULT_THRESHOLD} threshold: {flips}")
        for key in ("auroc_invented_detail", "auroc_lost_detail", "mean_iou", "lowest_planted_kind_mean",
                    "highest_benign_kind_mean"):
            same = f"{heads[0][key]:.3f}" == f"{heads[1][key]:.3f}"
            changed += 0 if same or "kind_mean" in key else 1
            print(f"  {key:26s} oracle {heads[0][key]:.5f}  torch {heads[1][key]:.5f}  "
                  f"{'same to 3 decimals' if same else 'DIFFERS at 3 decimals'}")
    print(f"worst invented/lost_detail difference over all images: {worst:.2e} ({'within' if worst <= 1e-3 else 'ABOVE'} 1e-3); "
          f"AUROC/IoU changed at 3 decimals: {changed}")
    return 0 if worst <= 1e-3 and changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
