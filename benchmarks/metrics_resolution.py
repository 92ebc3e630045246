"""Per-image metrics at release resolutions: seconds per image, qa against the float64 oracle and torchmetrics.

For each side (default 256, 1024, 2048, 4096) one reference (a package photo, bicubic-resized) and one output
(the reference with a slight blur, noise and a planted texture patch) are scored by:

- ``qa``: ``METRICS.factory(name)(device=...)``, ``prepare([sample])`` then ``compute(sample)`` as the engine calls it (the invented-detail
  family in torch float32 on ``--device``; the shared analysis cache is cleared before every timed call, so each
  number includes its own analysis);
- ``oracle``: the float64 numpy functions of :mod:`qa.metrics.invented.oracle` the torch port is tested against
  (``invented_consistent`` needs two analyses: output vs reference and redecoded vs baseline);
- ``torchmetrics``: the peer where one exists (psnr, ssim, ms_ssim; (1, 3, H, W) tensors on ``--device``).

One warm-up call at the smallest side, then the median of ``--repeats`` timed calls per implementation, the
repeats taken in turns across implementations (so that a drift of a shared machine's speed hits all alike). A
cell is ``skipped`` with the reason when the estimate from the previous side exceeds ``--max-seconds`` (4x the
pixels per doubling).

    .venv/bin/python -m benchmarks.metrics_resolution [--sides 256,1024,2048,4096] [--threads 2] [--device cpu]
        [--clock wall|cpu] [--max-seconds 400] [--metrics invented_detail,ssim,...]

The oracle runs in the same process and minute as qa, so its ratio ("qa faster than") is comparable even on a
shared machine; the 1-minute load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

#: per-image metrics timed (seed_variance gets two seed outputs; the split and the baseline variant get the
#: baseline / redecoded fields they need)
METRICS = ("psnr", "ssim", "ms_ssim", "invented_detail", "lost_detail", "invented_detail_baseline",
           "invented_consistent", "distortion", "hf_energy_ratio", "hf_energy_ratio_baseline", "seed_variance")


def images(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(output, reference) float32 (side, side, 3) in [0, 1]."""
    import skimage.data

    photo = torch.from_numpy(skimage.data.astronaut() / 255.0).float().permute(2, 0, 1)[None]
    ref = torch.nn.functional.interpolate(photo, size=(side, side), mode="bicubic", align_corners=False)
    ref = ref.clamp(0, 1)[0].permute(1, 2, 0).numpy()
    rng = np.random.default_rng(side)
    from scipy import ndimage

    out = ndimage.gaussian_filter(ref, (0.7, 0.7, 0)) + 0.01 * rng.standard_normal(ref.shape)
    s = side // 4
    out[s : 2 * s, s : 2 * s] += 0.05 * rng.standard_normal((s, s, 1))
    # C-contiguous (H, W, 3), as the engine hands images to the metrics (decoded outputs and loaded references)
    return np.clip(out, 0, 1).astype(np.float32), np.ascontiguousarray(ref, dtype=np.float32)


def timed(fn: Callable[[], object], repeats: int, before: Callable[[], None] = lambda: None,
          clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (``before`` runs untimed ahead of each) on ``clock``."""
    times = []
    for _ in range(repeats):
        before()
        t = clock()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(clock() - t)
    return statistics.median(times)


def runners(out: np.ndarray, ref: np.ndarray, device: str,
            names: tuple[str, ...] = METRICS) -> dict[tuple[str, str], Callable[[], object]]:
    """(metric, implementation) -> a call scoring (out, ref) once."""
    import inspect

    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_msssim
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    from qa.metrics.base import ImageSample
    from qa.metrics.catalog import METRICS as REG
    from qa.metrics.invented import oracle

    base = np.clip(out * 0.98 + 0.01, 0, 1).astype(np.float32)
    sample = ImageSample("c", out, reference=ref, baseline=base, redecoded=np.ascontiguousarray(out[::-1, ::-1]),
                         seed_outputs=[out, base])
    calls: dict[tuple[str, str], Callable[[], object]] = {}
    for name in names:
        factory = REG.factory(name)
        kwargs = {"device": device} if "device" in inspect.signature(factory).parameters else {}
        metric = factory(**kwargs)
        calls[(name, "qa")] = lambda m=metric: (m.prepare([sample]), m.compute(sample))  # type: ignore[misc]
    oracle_calls = {
        "invented_detail": lambda: oracle.invented_detail(out, ref),
        "invented_consistent": lambda: (oracle.invented_detail(out, ref), oracle.invented_detail(sample.redecoded, base)),
        "invented_detail_baseline": lambda: oracle.invented_detail(out, base),
        "distortion": lambda: oracle.distortion(out, ref),
        "hf_energy_ratio": lambda: oracle.hf_energy(out) / oracle.hf_energy(ref),
        "seed_variance": lambda: oracle.seed_std_map([out, base]),
    }
    for name, fn in oracle_calls.items():
        if name in names:
            calls[(name, "oracle (float64)")] = fn
    t_out = torch.from_numpy(out).permute(2, 0, 1)[None].to(device)
    t_ref = torch.from_numpy(ref).permute(2, 0, 1)[None].to(device)
    peers: dict[str, Callable[[], object]] = {
        "psnr": lambda: tm_psnr(t_out, t_ref, data_range=1.0),
        "ssim": lambda: tm_ssim(t_out, t_ref, data_range=1.0),
        "ms_ssim": lambda: tm_msssim(t_out, t_ref, data_range=1.0, normalize="relu"),
    }
    for name, fn in peers.items():
        if name in names:
            calls[(name, "torchmetrics")] = fn
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", default="256,1024,2048,4096")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=400.0, help="skip a cell whose estimate exceeds this")
    ap.add_argument("--metrics", default=",".join(METRICS), help="comma-separated subset of: " + ", ".join(METRICS))
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="wall: elapsed time; cpu: this process's CPU time, all threads (for a shared, loaded machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # qa's torch metrics raise glibc's mmap/trim thresholds on their first call (process-wide); set it before
    # anything runs, so that qa, the oracle and torchmetrics all run under the same allocator setting
    from qa.metrics.torch_memory import keep_freed_memory

    keep_freed_memory()
    from qa.metrics.invented.cache import CACHE

    names = tuple(m for m in args.metrics.split(",") if m)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        ap.error(f"unknown metric(s) {unknown}: choose from {', '.join(METRICS)}")
    load_before = os.getloadavg()[0]

    sides = [int(s) for s in args.sides.split(",")]
    table: dict[tuple[str, str], dict[int, str]] = {}
    last: dict[tuple[str, str], tuple[int, float]] = {}
    warm = runners(*images(192), args.device, names)
    for fn in warm.values():
        fn()
    for side in sides:
        calls = runners(*images(side), args.device, names)
        todo = {}
        for key, fn in calls.items():
            prev = last.get(key)
            estimate = prev[1] * (side / prev[0]) ** 2 if prev else 0.0
            if estimate > args.max_seconds:
                table.setdefault(key, {})[side] = f"skipped (~{estimate:.0f} s est.)"
            else:
                todo[key] = fn
        # the repeats go round the implementations (qa, oracle, torchmetrics, qa, ...): a drift of the machine's
        # speed during the run (a shared host) hits every implementation alike, not the one timed last
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        runs: dict[tuple[str, str], list[float]] = {key: [] for key in todo}
        for _ in range(args.repeats):
            for key, fn in todo.items():
                runs[key].append(timed(fn, 1, CACHE.clear, clock))
        for key, times in runs.items():
            secs = statistics.median(times)
            last[key] = (side, secs)
            table.setdefault(key, {})[side] = f"{secs:.3f}"
            print(f"{key[0]:26s} {key[1]:18s} {side:5d}  {secs:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})",
                  flush=True)
    print(f"\n# {args.clock} seconds per image, {args.device}, torch threads {args.threads}, median of {args.repeats}; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print("| metric | implementation | " + " | ".join(f"{s} px" for s in sides) + " |")
    print("|---|---|" + "---|" * len(sides))
    for (name, impl), cells in sorted(table.items()):
        print(f"| {name} | {impl} | " + " | ".join(cells.get(s, "") for s in sides) + " |")
    print("\n| metric | qa faster than | " + " | ".join(f"{s} px" for s in sides) + " |")
    print("|---|---|" + "---|" * len(sides))
    for (name, impl), cells in sorted(table.items()):
        if impl == "qa":
            continue
        ratios = []
        for side in sides:
            mine, theirs = table.get((name, "qa"), {}).get(side, ""), cells.get(side, "")
            ok = mine.replace(".", "", 1).isdigit() and theirs.replace(".", "", 1).isdigit() and float(mine) > 0
            ratios.append(f"{float(theirs) / float(mine):.1f}x" if ok else "")
        print(f"| {name} | {impl} | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
