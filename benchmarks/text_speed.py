"""Time the text metrics on 2048 x 2048 outputs: what a user waits for per image once the reference is cached.

Run ``python -m benchmarks.text_speed [--repeats 5]``. Three 2048 x 2048 references: ``mosaic`` (the 32 tiles
of reference_sets/text, twice, in an 8 x 8 grid: text everywhere), ``sign`` (one text tile enlarged 8x bicubic:
large letters) and ``photo`` (a default-set photo enlarged 4x: no text). Each output is the reference after
JPEG quality 50 (a benign change that makes the readings differ). Per case: one untimed call fills the reference
cache, then ``repeats`` timed calls of all three metrics on a fresh output array (in turns across the cases, so
a shared machine's drift hits every case alike); the median wall and CPU seconds (all threads) are printed with
the thread count and the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from PIL import Image

from benchmarks.text_planted import jpeg
from qa.imageio import load_image
from qa.metrics.base import ImageSample
from qa.metrics.text import ocr
from qa.metrics.text.metrics import TextCER, TextInvented, TextWER
from qa.metrics.text.readings import READINGS
from qa.refset.manifest import load_reference_set

SIDE = 2048


def _enlarge(img: np.ndarray, factor: int) -> np.ndarray:
    pil = Image.fromarray(np.clip(np.floor(img * 255 + 0.5), 0, 255).astype(np.uint8))
    return np.asarray(pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.BICUBIC),
                      np.float32) / 255.0


def cases() -> dict[str, np.ndarray]:
    """name -> 2048 x 2048 float32 reference."""
    tiles = [load_image(i.path).pixels for i in load_reference_set("reference_sets/text").items]
    grid = [np.concatenate([tiles[(r * 8 + c) % len(tiles)] for c in range(8)], axis=1) for r in range(8)]
    photo = load_image("reference_sets/default/astronaut-whole.png").pixels
    return {"mosaic": np.concatenate(grid, axis=0), "sign": _enlarge(tiles[0], SIDE // tiles[0].shape[0]),
            "photo": _enlarge(photo, SIDE // photo.shape[0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if ocr.unavailable_reason():
        print(ocr.unavailable_reason())
        return 2
    metrics = [TextCER(), TextWER(), TextInvented()]
    refs = cases()
    outs = {k: jpeg(v) for k, v in refs.items()}
    for k, ref in refs.items():  # fill the reference cache (a run reads each reference once)
        metrics[0].compute(ImageSample(k, outs[k].copy(), ref))
    times: dict[str, list[float]] = {k: [] for k in refs}
    cpu: dict[str, list[float]] = {k: [] for k in refs}
    for _ in range(args.repeats):
        for k, ref in refs.items():
            READINGS._memo.clear()
            sample = ImageSample(k, outs[k].copy(), ref)
            t0, c0 = time.perf_counter(), time.process_time()
            for m in metrics:
                m.compute(sample)
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    print(f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"OCR threads {ocr.threads()}")
    print("| output 2048 x 2048 (JPEG q50 of the reference) | wall s, median | wall s, min | CPU s, median | runs "
          "| text_cer | text_invented |")
    print("|---|---|---|---|---|---|---|")
    for k in refs:
        sample = ImageSample(k, outs[k].copy(), refs[k])
        values = [m.compute(sample).value for m in metrics]
        print(f"| {k} | {statistics.median(times[k]):.2f} | {min(times[k]):.2f} | {statistics.median(cpu[k]):.2f} | "
              f"{len(times[k])} | {values[0]:.4f} | {values[2]:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
