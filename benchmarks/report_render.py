"""Report size and headless render time on a demo-sized store (4+ decoders x the 32-image default set).

    .venv/bin/python benchmarks/report_render.py                 # build a fresh store in a temp folder
    .venv/bin/python benchmarks/report_render.py --db reports/qa.duckdb   # measure an existing store

Builds the store with the real engine and every registered metric (so the maps the metrics produce are in the
grid), writes the report, then opens it ``--repeats`` times in headless Chromium from disk. Prints a markdown
table for docs/benchmarks.md ("Report") and a JSON line. Targets (issue 8): < 15 MB and < 5 s to render.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.factory import make_decoder
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.report.browser import render
from qa.report.build import write_report
from qa.store import Store

#: the demo's decoders first, then fill-ins that always run here
DEFAULT_DECODERS = ("vae", "pid", "esrgan", "bicubic", "identity", "noisy-bicubic-bench")
MIN_DECODERS = 4


class NoisyBicubic(BicubicDecoder):
    """Stochastic fill-in: bicubic x4 plus seeded Gaussian noise (sigma 0.02), so seed metrics have data."""

    family = "noisy-bicubic"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        g = torch.Generator().manual_seed(seed)
        return (out + 0.02 * torch.randn(out.shape, generator=g)).clamp(0, 1)


def build(db: Path, names: list[str], reference_set: str, seeds: int) -> list[str]:
    """Run the first available ``names`` (at least MIN_DECODERS) into ``db``; returns the decoders run."""
    engine, ran = RunEngine(Store(db)), []
    for name in names:
        try:
            reason = make_decoder(name).unavailable_reason()
        except Exception as exc:  # noqa: BLE001 - a benchmark skips what cannot run, and says so
            reason = str(exc)
        if reason:
            print(f"skip {name}: {reason.splitlines()[0]}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        engine.start(RunConfig(decoder=name, reference_set=reference_set, seeds=list(range(seeds)), progress=False))
        print(f"ran {name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ran.append(name)
    return ran


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=None, help="measure this store instead of building one")
    ap.add_argument("--decoder", action="append", default=None, help="decoders to run (default: demo + fill-ins)")
    ap.add_argument("--reference-set", default="default")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="headless loads to time")
    ap.add_argument("--out", type=Path, default=None, help="report path (default: a temp folder)")
    args = ap.parse_args()
    if "noisy-bicubic-bench" not in DECODERS:
        DECODERS.register("noisy-bicubic-bench", NoisyBicubic)
    tmp = Path(tempfile.mkdtemp(prefix="qa-report-bench-"))
    db = args.db or tmp / "qa.duckdb"
    if args.db is None:
        ran = build(db, list(args.decoder or DEFAULT_DECODERS), args.reference_set, args.seeds)
        if len(ran) < MIN_DECODERS and not args.decoder:
            print(f"only {len(ran)} decoders could run", file=sys.stderr)
    out = args.out or tmp / "report.html"
    t0 = time.perf_counter()
    write_report(Store(db), out=out)
    build_s = time.perf_counter() - t0
    text = out.read_text(encoding="utf-8")
    images = sum(len(m) for m in re.findall(r"url\(data:image/(?:png|webp);base64,[^)]*\)", text))
    n_img = len(re.findall(r"\.t\d+\{background-image:url\(data:", text))
    loads = [render(out) for _ in range(max(1, args.repeats))]
    result = {
        "decoders": len(re.findall(r"<tr><td><b>", text.split('id="changes"')[0])),
        "thumbnails": n_img,
        "size_mb": out.stat().st_size / 1e6,
        "images_mb": images / 1e6,
        "build_s": build_s,
        "ready_ms": statistics.median(r.attr("ready-ms") or -1 for r in loads),
        "ready_ms_all": [r.attr("ready-ms") for r in loads],
        "draw_ms": statistics.median(r.attr("render-ms") or -1 for r in loads),
        "browser_wall_s": statistics.median(r.wall_s for r in loads),
        "browser_cpu_s": statistics.median(r.cpu_s for r in loads),
        "browser_cpu_s_all": [round(r.cpu_s, 2) for r in loads],
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "plots": loads[0].attr("plots-rendered"),
        "js_errors": max(r.attr("js-errors") or 0 for r in loads),
        "console": sorted({c for r in loads for c in r.console}),
        "report": str(out),
    }
    print("| decoders | thumbnails | file size | of which images | write_report | ready in page (median) "
          "| drawing charts | headless launch-to-exit: wall / CPU (median) | charts / JS errors | load avg / CPUs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {result['decoders']} | {n_img} | {result['size_mb']:.2f} MB | {result['images_mb']:.2f} MB "
          f"| {build_s:.2f} s | {result['ready_ms'] / 1000:.2f} s | {result['draw_ms'] / 1000:.2f} s "
          f"| {result['browser_wall_s']:.2f} s / {result['browser_cpu_s']:.2f} s | {result['plots']} / {result['js_errors']} "
          f"| {result['load_average']:.1f} / {result['cpus']} |")
    print(json.dumps(result))
    return 0 if result["js_errors"] == 0 and not result["console"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
