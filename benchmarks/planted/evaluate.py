"""Score the planted-hallucination benchmark: AUROC (planted vs benign) of ``invented_detail`` (the share) and
``invented_peak`` (the region score), planted pairs above the highest benign pair, map IoU, per-kind means.

Usage (from the repository root):
    .venv/bin/python -m benchmarks.planted.evaluate --split heldout [--threshold T] [--kinds a,b] [--jobs N]
        [--save FILE.npz]

``--threshold`` is the one global map threshold (luma RMS units) used for IoU; it was fixed on the ``tune``
split (``--fit-threshold`` prints the IoU-maximising value there) and is applied unchanged to ``heldout``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from benchmarks.planted.cases import SPLITS, Case, build
from benchmarks.planted.debian_photos import PHOTO_SPLITS
from qa.metrics.invented import oracle

#: the global map threshold (luma RMS amplitude of invented detail), fitted on the tune split only
DEFAULT_THRESHOLD = 0.0045


def auroc(pos: list[float], neg: list[float]) -> float:
    """Area under the ROC curve = P(pos > neg) + 0.5 P(tie) (Mann-Whitney), for 'higher = positive'."""
    p = np.asarray(pos, np.float64)[:, None]
    n = np.asarray(neg, np.float64)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def score_one(c: Case) -> dict[str, object]:
    """Invented detail (scalar, finest band's share, map), lost detail, distortion, PSNR and SSIM of one case."""
    res = oracle.invented_detail(c.output, c.reference)
    return {
        "name": c.name, "kind": c.kind, "group": c.group, "mask": c.mask, "map": res.map,
        "invented_detail": res.invented, "invented_peak": res.peak, "fine_invented": res.fine_invented,
        "peak_region": res.region, "peak_spectral": res.spectral,
        "lost_detail": res.lost,
        "distortion": oracle.distortion(c.output, c.reference),
        "psnr": psnr(c.output, c.reference), "ssim": ssim(c.output, c.reference),
    }


def score(cases: list[Case], jobs: int = 1) -> list[dict[str, object]]:
    """:func:`score_one` of every case, in case order (``jobs`` > 1: that many worker processes)."""
    if jobs <= 1:
        return [score_one(c) for c in cases]
    from multiprocessing import Pool

    with Pool(jobs) as pool:
        return pool.map(score_one, cases, chunksize=4)


#: the per-case scalars :func:`save` writes (float64 arrays of length N, in case order)
SAVED_SCALARS = ("invented_detail", "invented_peak", "peak_region", "peak_spectral", "fine_invented", "lost_detail",
                 "distortion", "psnr", "ssim")
#: the two per-image scores of invented detail the tables report (the share and the region score)
SCORES = ("invented_detail", "invented_peak")


def save(rows: list[dict[str, object]], path: str) -> None:
    """Write the oracle's per-case results to ``path`` (.npz): ``name``, ``kind``, ``group`` (str arrays, N),
    the scalars of :data:`SAVED_SCALARS` (float64, N), ``map`` (float32, N x H x W: RMS invented amplitude,
    luma units) and ``mask`` (bool, N x H x W: the planted region, all False for other cases)."""
    arrays: dict[str, np.ndarray] = {k: np.array([str(r[k]) for r in rows]) for k in ("name", "kind", "group")}
    for k in SAVED_SCALARS:
        arrays[k] = np.array([float(r[k]) for r in rows], dtype=np.float64)  # type: ignore[arg-type]
    arrays["map"] = np.stack([np.asarray(r["map"], np.float32) for r in rows])
    arrays["mask"] = np.stack([np.asarray(r["mask"], bool) for r in rows])
    np.savez_compressed(path, **arrays)


def report(rows: list[dict[str, object]], threshold: float) -> dict[str, float]:
    """Print the tables; returns the headline numbers."""
    planted = [r for r in rows if r["group"] == "planted"]
    benign = [r for r in rows if r["group"] != "planted"]
    out: dict[str, float] = {}
    print(f"cases: {len(planted)} planted, {len(benign)} benign (faithful included)")
    for metric, sign in (("invented_detail", 1), ("invented_peak", 1), ("psnr", -1), ("ssim", -1),
                         ("lost_detail", 1), ("distortion", 1)):
        a = auroc([sign * float(r[metric]) for r in planted], [sign * float(r[metric]) for r in benign])
        out[f"auroc_{metric}"] = a
        print(f"AUROC planted vs benign, {metric:16s} ({'higher' if sign > 0 else 'lower'} = planted): {a:.3f}")
    for metric in SCORES:
        top = max(float(r[metric]) for r in benign)  # type: ignore[arg-type]
        above = sum(float(r[metric]) > top for r in planted)  # type: ignore[arg-type]
        key = "above_benign" if metric == "invented_detail" else f"above_benign_{metric}"
        out[key] = above / len(planted)
        print(f"planted pairs above the highest benign pair, {metric} ({top:.4g}): {above} of {len(planted)} "
              f"({out[key]:.0%})")
    regional = [r for r in planted if not np.asarray(r["mask"]).all()]  # whole-image kinds have no region
    ious = [iou(np.asarray(r["map"]) > threshold, np.asarray(r["mask"])) for r in regional]
    out["mean_iou"] = float(np.mean(ious)) if ious else float("nan")
    print(f"mean IoU of map > {threshold:g} with the planted region (region kinds): {out['mean_iou']:.3f} "
          f"(median {np.median(ious) if ious else float('nan'):.3f}, n={len(ious)})")
    fp = [float((np.asarray(r["map"]) > threshold).mean()) for r in benign]
    print(f"benign: mean fraction of pixels above the threshold: {np.mean(fp):.4f}")
    by_kind: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_kind[str(r["kind"])].append(r)
    # per kind: AUROC of invented_detail of that kind against every case of the other group; IoU for planted
    # kinds, the fraction of pixels above the threshold (false positives) for benign ones
    print("\nkind            group     invented  AUROC  peak     AUROC  lost   distortion  psnr   ssim   IoU/fp")

    def kind_auroc(metric: str, rs: list[dict[str, object]]) -> float:
        vals = [float(r[metric]) for r in rs]  # type: ignore[arg-type]
        if rs[0]["group"] == "planted":
            return auroc(vals, [float(r[metric]) for r in benign])  # type: ignore[arg-type]
        return auroc([float(r[metric]) for r in planted], vals)  # type: ignore[arg-type]

    for kind, rs in sorted(by_kind.items(), key=lambda kv: (kv[1][0]["group"] != "planted", kv[0])):
        vals = [float(r["invented_detail"]) for r in rs]  # type: ignore[arg-type]
        peaks = [float(r["invented_peak"]) for r in rs]  # type: ignore[arg-type]
        if rs[0]["group"] == "planted":
            kiou = float(np.mean([iou(np.asarray(r["map"]) > threshold, np.asarray(r["mask"])) for r in rs]))
        else:
            kiou = float(np.mean([(np.asarray(r["map"]) > threshold).mean() for r in rs]))
        print(f"{kind:15s} {rs[0]['group']:9s} {np.mean(vals):.4f}   {kind_auroc('invented_detail', rs):.3f}  "
              f"{np.mean(peaks):7.4f}  {kind_auroc('invented_peak', rs):.3f}  "
              f"{np.mean([r['lost_detail'] for r in rs]):.3f}  {np.mean([r['distortion'] for r in rs]):.4f}      "
              f"{np.mean([min(float(r['psnr']), 99) for r in rs]):5.2f}  {np.mean([r['ssim'] for r in rs]):.3f}  "
              f"{kiou:.3f}")
    pk = min(np.mean([r["invented_detail"] for r in rs]) for rs in by_kind.values() if rs[0]["group"] == "planted")
    bk = max(np.mean([r["invented_detail"] for r in rs]) for rs in by_kind.values() if rs[0]["group"] != "planted")
    out["lowest_planted_kind_mean"], out["highest_benign_kind_mean"] = float(pk), float(bk)
    print(f"\nlowest planted-kind mean {pk:.4f} vs highest benign-kind mean {bk:.4f}")
    return out


def fit_threshold(rows: list[dict[str, object]]) -> float:
    """The global threshold maximising mean IoU over the planted cases (use on the tune split only)."""
    planted = [r for r in rows if r["group"] == "planted" and not np.asarray(r["mask"]).all()]
    grid = np.geomspace(1e-3, 0.1, 41)
    scores = [np.mean([iou(np.asarray(r["map"]) > t, np.asarray(r["mask"])) for r in planted]) for t in grid]
    return float(grid[int(np.argmax(scores))])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="heldout", choices=[*SPLITS, *PHOTO_SPLITS])
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--fit-threshold", action="store_true", help="print the IoU-maximising threshold (tune only)")
    ap.add_argument("--kinds", default="", help="comma-separated kinds to score (default: all; for experiments)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--save", default="", help="write the per-case results to this .npz (see evaluate.save)")
    args = ap.parse_args(argv)
    t0 = time.time()
    cases = build(args.split)
    if args.kinds:
        wanted = {k.strip() for k in args.kinds.split(",") if k.strip()}
        unknown = wanted - {c.kind for c in cases}
        if unknown:
            ap.error(f"unknown kinds {sorted(unknown)}; known: {sorted({c.kind for c in cases})}")
        cases = [c for c in cases if c.kind in wanted]
        if len({c.group == "planted" for c in cases}) < 2:
            ap.error("--kinds needs at least one planted and one benign (or faithful) kind: AUROC compares them")
    rows = score(cases, args.jobs)
    if args.save:
        save(rows, args.save)
        print(f"saved per-case results to {args.save}")
    print(f"split {args.split}: scored {len(rows)} cases in {time.time() - t0:.0f} s")
    if args.fit_threshold:
        t = fit_threshold(rows)
        print(f"IoU-maximising global threshold on {args.split}: {t:.4g}")
        args.threshold = t
    report(rows, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
