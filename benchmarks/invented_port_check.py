"""The torch port against the float64 oracle on every image of the planted benchmark.

For each split: the largest absolute difference of ``invented_detail`` and ``lost_detail`` over all cases,
the largest relative difference of ``invented_peak`` (the region score), the largest map difference, the pixels whose side of the IoU threshold differs, and the headline numbers of
:func:`benchmarks.planted.evaluate.report` (AUROC, mean map IoU, per-kind means) computed both ways.

The oracle is slow (about 10 minutes per split on one core); ``--save-oracle DIR`` writes its results to
``DIR/oracle_<split>.npz`` and ``--oracle DIR`` reads them back instead of recomputing (the file's case names
must equal the split's, in order). An npz holds ``names`` (str, (n,)), ``invented_detail``, ``invented_peak`` and
``lost_detail`` (float64, (n,)) and ``maps`` (float32, (n, H, W)); files with ``name`` and ``map`` instead (issue 16's
``/work/scratch/oracle_<split>.npz`` dumps) are read too.

    .venv/bin/python -m benchmarks.invented_port_check [--splits tune,heldout] [--threads 1]
        [--oracle DIR | --save-oracle DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np
import torch

from benchmarks.planted.cases import Case, build
from benchmarks.planted.evaluate import DEFAULT_THRESHOLD, report
from qa.metrics.invented import analyse, oracle

Row = dict[str, object]


#: tolerances of the check: invented/lost detail absolute, the region score relative (+ 1e-4 absolute)
TOL_SHARE = 1e-3
TOL_PEAK = 1e-2


def _row(c: Case, inv: float, peak: float, lost: float, m: np.ndarray) -> Row:
    return {"name": c.name, "kind": c.kind, "group": c.group, "mask": c.mask, "map": m, "invented_detail": inv,
            "invented_peak": peak, "lost_detail": lost, "distortion": 0.0, "psnr": 0.0, "ssim": 0.0}


def load_oracle(path: str, cases: list[Case]) -> list[Row]:
    """Saved oracle results (see the module doc) as report rows, checked against the split's case names."""
    with np.load(path, allow_pickle=False) as z:
        # this script's files name the fields "names"/"maps"; issue 16's oracle dumps "name"/"map"
        names = [str(n) for n in z["names" if "names" in z.files else "name"]]
        want = [c.name for c in cases]
        if names[: len(want)] != want:
            raise SystemExit(f"{path}: its case names differ from the split's (stale file? rerun --save-oracle)")
        # each z[...] access decompresses the whole array: read every array once
        inv, lost, maps = z["invented_detail"], z["lost_detail"], z["maps" if "maps" in z.files else "map"]
        if "invented_peak" not in z.files:
            raise SystemExit(f"{path}: no invented_peak (a version 4 file? rerun --save-oracle)")
        peak = z["invented_peak"]
    return [_row(c, float(inv[i]), float(peak[i]), float(lost[i]), maps[i]) for i, c in enumerate(cases)]


def save_oracle(path: str, rows: list[Row]) -> None:
    """Write oracle rows as the npz of the module doc."""
    np.savez_compressed(path, names=np.array([r["name"] for r in rows]),
                        invented_detail=np.array([r["invented_detail"] for r in rows], np.float64),
                        invented_peak=np.array([r["invented_peak"] for r in rows], np.float64),
                        lost_detail=np.array([r["lost_detail"] for r in rows], np.float64),
                        maps=np.stack([np.asarray(r["map"], np.float32) for r in rows]))


def _rows(cases: list[Case], oracle_file: str | None) -> tuple[list[Row], list[Row], dict[str, float]]:
    t_oracle = t_port = 0.0
    oracle_rows = load_oracle(oracle_file, cases) if oracle_file else []
    port_rows = []
    for c in cases:
        if not oracle_file:
            t = time.perf_counter()
            want = oracle.invented_detail(c.output, c.reference)
            t_oracle += time.perf_counter() - t
            oracle_rows.append(_row(c, want.invented, want.peak, want.lost, want.map))
        t = time.perf_counter()
        got = analyse(torch.from_numpy(c.output).permute(2, 0, 1)[None],
                      torch.from_numpy(c.reference).permute(2, 0, 1)[None]).result(0)
        t_port += time.perf_counter() - t
        port_rows.append(_row(c, got.invented, got.peak, got.lost, got.map))
    return oracle_rows, port_rows, {"oracle_s": t_oracle, "port_s": t_port}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", default="tune,heldout")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--oracle", metavar="DIR", help="read DIR/oracle_<split>.npz instead of running the oracle")
    ap.add_argument("--save-oracle", metavar="DIR", help="write the oracle's results to DIR/oracle_<split>.npz")
    ap.add_argument("--limit", type=int, default=0, help="only the first N cases of each split (quick checks)")
    args = ap.parse_args(argv)
    if args.oracle and args.save_oracle:
        ap.error("--oracle and --save-oracle exclude each other")
    torch.set_num_threads(args.threads)
    worst = worst_peak = 0.0
    changed = 0
    for split in args.splits.split(","):
        cases = build(split)
        if args.limit:
            cases = cases[: args.limit]
        src = os.path.join(args.oracle, f"oracle_{split}.npz") if args.oracle else None
        oracle_rows, port_rows, times = _rows(cases, src)
        if args.save_oracle:
            os.makedirs(args.save_oracle, exist_ok=True)
            save_oracle(os.path.join(args.save_oracle, f"oracle_{split}.npz"), oracle_rows)
        pairs = list(zip(oracle_rows, port_rows, strict=True))
        d_inv = max(abs(float(a["invented_detail"]) - float(b["invented_detail"])) for a, b in pairs)  # type: ignore[arg-type]
        d_lost = max(abs(float(a["lost_detail"]) - float(b["lost_detail"])) for a, b in pairs)  # type: ignore[arg-type]
        d_peak = max(abs(float(a["invented_peak"]) - float(b["invented_peak"]))  # type: ignore[arg-type]
                     / (float(a["invented_peak"]) + 1e-2) for a, b in pairs)  # type: ignore[arg-type]
        d_map = max(float(np.abs(np.asarray(a["map"]) - np.asarray(b["map"])).max()) for a, b in pairs)
        flips = sum(int(((np.asarray(a["map"]) > DEFAULT_THRESHOLD) != (np.asarray(b["map"]) > DEFAULT_THRESHOLD)).sum())
                    for a, b in pairs)
        heads = []
        for rows in (oracle_rows, port_rows):
            with contextlib.redirect_stdout(io.StringIO()):
                heads.append(report(rows, DEFAULT_THRESHOLD))
        worst = max(worst, d_inv, d_lost)
        worst_peak = max(worst_peak, d_peak)
        how = f"oracle read from {src}" if src else f"oracle {times['oracle_s']:.0f} s"
        print(f"split {split}: {len(oracle_rows)} cases; {how}, torch {times['port_s']:.1f} s "
              f"(1 image per call, {args.threads} thread(s))")
        print(f"  max |invented_detail diff| {d_inv:.2e}, max |lost_detail diff| {d_lost:.2e}, max |map diff| "
              f"{d_map:.2e} luma, pixels on the other side of the {DEFAULT_THRESHOLD} threshold: {flips}")
        print(f"  max |invented_peak diff| / (oracle + 0.01) {d_peak:.2e}")
        for key in ("auroc_invented_detail", "auroc_invented_peak", "auroc_lost_detail", "mean_iou",
                    "above_benign", "above_benign_invented_peak", "lowest_planted_kind_mean",
                    "highest_benign_kind_mean"):
            same = f"{heads[0][key]:.3f}" == f"{heads[1][key]:.3f}"
            changed += 0 if same or "kind_mean" in key else 1
            print(f"  {key:26s} oracle {heads[0][key]:.5f}  torch {heads[1][key]:.5f}  "
                  f"{'same to 3 decimals' if same else 'DIFFERS at 3 decimals'}")
    print(f"worst invented/lost_detail difference over all images: {worst:.2e} "
          f"({'within' if worst <= TOL_SHARE else 'ABOVE'} {TOL_SHARE:g}); worst invented_peak difference "
          f"{worst_peak:.2e} of (oracle + 0.01) ({'within' if worst_peak <= TOL_PEAK else 'ABOVE'} {TOL_PEAK:g}); "
          f"AUROC/IoU/above-benign changed at 3 decimals: {changed}")
    return 0 if worst <= TOL_SHARE and worst_peak <= TOL_PEAK and changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
