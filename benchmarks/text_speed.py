"""Time the text metrics on 2048 x 2048 outputs: what a user waits for per image once the reference is cached.

Run ``python -m benchmarks.text_speed [--tree NAME=PATH ...] [--rounds 3] [--repeats 2]``. Three 2048 x 2048
references: ``mosaic`` (the 32 tiles of reference_sets/text, twice, in an 8 x 8 grid: text everywhere), ``sign``
(one text tile enlarged 8x bicubic: large letters) and ``photo`` (a default-set photo enlarged 4x: no text). Each
output is the reference after JPEG quality 50 (a benign change that makes the readings differ). The metrics run
as in ``qa run``: with a store (the reference's reading goes into its feature cache once, untimed) and the
reference file's sha256 on the sample. Timed: all three metrics of one output, on a fresh output array.

Per case it prints the median wall and CPU seconds (all threads) and a **2-core estimate**: the CPU seconds of
the calling thread plus those of the busiest OCR strip thread, i.e. the wall time on two otherwise idle cores
(the strips are read on two threads; everything else is serial). On a shared machine the wall column is
inflated by the other jobs; the estimate and the CPU column are not.

Each ``--tree`` (a checkout of qa, e.g. the previous commit exported with ``git archive``) runs in its own
process with ``PYTHONPATH=<tree>``; trees take turns in every round, so the machine's drift hits all alike.
Without ``--tree`` the current tree is measured.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 2048
ROOT = Path(__file__).resolve().parents[1]


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(img * 255 + 0.5), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int = 50) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_u8(img)).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return np.asarray(out.convert("RGB"), np.float32) / 255.0


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), np.float32) / 255.0


def _enlarge(img: np.ndarray, factor: int) -> np.ndarray:
    pil = Image.fromarray(_u8(img))
    return np.asarray(pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.BICUBIC),
                      np.float32) / 255.0


def cases() -> dict[str, np.ndarray]:
    """name -> 2048 x 2048 float32 reference (built from this tree's reference sets)."""
    folder = ROOT / "reference_sets" / "text"
    with open(folder / "manifest.csv", encoding="utf-8") as fh:
        import csv

        files = [row["file"] for row in csv.DictReader(fh)]
    tiles = [_load(folder / f) for f in files]
    grid = [np.concatenate([tiles[(r * 8 + c) % len(tiles)] for c in range(8)], axis=1) for r in range(8)]
    photo = _load(ROOT / "reference_sets" / "default" / "astronaut-whole.png")
    return {"mosaic": np.concatenate(grid, axis=0), "sign": _enlarge(tiles[0], SIDE // tiles[0].shape[0]),
            "photo": _enlarge(photo, SIDE // photo.shape[0])}


def _strip_clock() -> dict[int, float]:
    """Wrap the OCR's recogniser so that the CPU seconds it spends off the calling thread are summed per thread
    (the strip threads); returns the dict it fills."""
    from qa.metrics.text import ocr

    spent: dict[int, float] = {}
    inner = ocr._recognise
    main = threading.get_ident()

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            me = threading.get_ident()
            if me != main:
                spent[me] = spent.get(me, 0.0) + time.thread_time() - t0

    ocr._recognise = timed
    return spent


def worker(repeats: int) -> dict[str, dict[str, object]]:
    """Measure the tree on ``PYTHONPATH`` (or this one): per case, lists of wall, CPU and 2-core estimate."""
    from qa.metrics.base import ImageSample
    from qa.metrics.text import ocr
    from qa.metrics.text.metrics import TextCER, TextInvented, TextWER
    from qa.metrics.text.readings import READINGS
    from qa.store import Store

    if ocr.unavailable_reason():
        raise SystemExit(ocr.unavailable_reason())
    refs = cases()
    outs = {k: _jpeg(v) for k, v in refs.items()}
    shas = {k: f"{k}-reference" for k in refs}  # stands for the reference file's sha256
    result: dict[str, dict[str, object]] = {k: {"wall": [], "cpu": [], "estimate": []} for k in refs}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "speed.duckdb")
        metrics = [TextCER(store=store), TextWER(store=store), TextInvented(store=store)]
        for k, ref in refs.items():  # fill the feature cache (a run reads each reference once)
            metrics[0].compute(ImageSample(k, outs[k].copy(), ref, reference_sha256=shas[k]))
        spent = _strip_clock()
        for _ in range(repeats):
            for k, ref in refs.items():  # in turns across the cases
                READINGS._memo.clear()
                sample = ImageSample(k, outs[k].copy(), ref, reference_sha256=shas[k])
                spent.clear()
                t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
                values = [m.compute(sample).value for m in metrics]
                wall, cpu, mine = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0
                row = result[k]
                row["wall"].append(wall)  # type: ignore[union-attr]
                row["cpu"].append(cpu)  # type: ignore[union-attr]
                row["estimate"].append(mine + max(spent.values(), default=0.0))  # type: ignore[union-attr]
                row["text_cer"], row["text_invented"] = values[0], values[2]
    return result


def _run_tree(path: Path, repeats: int) -> dict[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(repeats)], env=env, cwd=path,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{path}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a qa checkout (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which every tree takes a turn")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per case in each turn")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.repeats)))
        return 0
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.tree)] or [("this tree", ROOT)]
    runs: dict[str, list[dict[str, dict[str, object]]]] = {n: [] for n, _ in trees}
    loads = []
    for _ in range(args.rounds):
        for name, path in trees:
            runs[name].append(_run_tree(path, args.repeats))
            loads.append(os.getloadavg()[0])
    print(f"{platform.node()}, {os.cpu_count()} cores, 1-min load average {min(loads):.1f}-{max(loads):.1f}; "
          f"{args.rounds} rounds x {args.repeats} calls per case and tree")
    print("| tree | output 2048 x 2048 (JPEG q50 of the reference) | 2-core estimate s, median | CPU s, median "
          "| wall s, median | text_cer | text_invented |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in trees:
        for case in runs[name][0]:
            def pooled(key: str, case: str = case, name: str = name) -> float:
                return statistics.median(v for r in runs[name] for v in r[case][key])  # type: ignore[union-attr]
            last = runs[name][-1][case]
            print(f"| {name} | {case} | {pooled('estimate'):.2f} | {pooled('cpu'):.2f} | {pooled('wall'):.2f} | "
                  f"{last['text_cer']:.4f} | {last['text_invented']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
