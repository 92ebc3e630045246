"""Held-out check of the text metrics: fonts, words and grounds the text set does not use, planted by re-rendering.

Run ``python -m benchmarks.text_heldout`` (needs the fonts of :mod:`qa.refset.text_sources`). 24 tiles drawn by
the text set's generator with 12 other font files, other phrases, flat and photographic grounds (signs and
caption bands); the benign changes of :mod:`benchmarks.text_planted`, then the longest word of each tile
replaced by a pool word of the same length and the tile re-rendered in the same font (a planting unlike the
text-set benchmark's, which pastes Pillow's font over the word). Prints the zeros per change and, per tile, what
the reference reads and whether the planted word was found.
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np

from benchmarks.text_planted import BENIGN, _replacement
from qa.metrics.base import ImageSample
from qa.metrics.text.metrics import TextCER, TextInvented
from qa.refset.text_sources import TextTile, render_text_tile

FONTS = ("DejaVuSerif-Bold.ttf", "LiberationSansNarrow-Regular.ttf", "FreeMono.ttf", "NotoSans-Regular.ttf",
         "DejaVuSansCondensed.ttf", "LiberationSerif-Italic.ttf", "FreeSerifBold.ttf", "NotoSerif-Bold.ttf",
         "LiberationMono-Regular.ttf", "DejaVuSans-Oblique.ttf", "FreeSansOblique.ttf", "NotoSans-Bold.ttf")
PHRASES = (("WAREHOUSE", "Loading bay 3"), ("Fresh bread", "every morning"), ("DANGER", "High voltage"),
           ("Welcome to", "Riverside Park"), ("Gate closes", "at 22:00"), ("FIRE EXIT", "keep clear"),
           ("Library", "Quiet please"), ("BUS STOP", "Route 41"), ("Parcel 7731", "handle with care"),
           ("Second floor", "Radiology"), ("Open 24 hours",), ("PHARMACY", "Night service"),
           ("Ticket office", "Platform 2"), ("No entry", "Staff only"), ("Harbour view", "Rooms free"),
           ("GARDEN CENTRE",), ("Museum shop", "Level 1"), ("STOP",), ("Mind the step",), ("Car park", "Level B2"),
           ("Hot coffee", "Cold drinks"), ("Room 214",), ("Post office", "Closed Sunday"), ("WET PAINT",))
GROUNDS: tuple[object, ...] = ((255, 255, 255), (20, 30, 60), (240, 220, 160), ((200, 230, 255), (90, 120, 200)),
                               (30, 90, 40), "coffee", "rocket", "astronaut", "china", "hopper", "chelsea", "flower",
                               "motorcycle")
AT = {"coffee": (300, 100), "rocket": (100, 150), "astronaut": (200, 120), "china": (250, 100), "hopper": (200, 250),
      "chelsea": (150, 30), "flower": (100, 100), "motorcycle": (400, 100)}


def tiles(seed: int = 7) -> list[TextTile]:
    """The 24 held-out tiles (sizes drawn from 16-36 px with ``seed``)."""
    rng = random.Random(seed)
    out = []
    for i, lines in enumerate(PHRASES):
        ground, font = GROUNDS[i % len(GROUNDS)], FONTS[i % len(FONTS)]
        size = rng.choice([16, 18, 20, 22, 24, 28, 32, 36])
        if isinstance(ground, str):
            style = rng.choice(["sign", "caption"])
            dark_ink = style == "sign"
            out.append(TextTile(f"h{i}", ground, style, font, size, lines, (0, 0, 0) if dark_ink else (255, 255, 255),
                                (250, 250, 250) if dark_ink else (0, 0, 0), at=AT[ground]))
        else:
            dark = float(np.asarray(ground, np.float64).reshape(-1, 3)[0].sum()) < 300
            out.append(TextTile(f"h{i}", ground, "plain", font, size, lines,
                                (255, 255, 255) if dark else (10, 10, 10)))
    return out


def planted(tile: TextTile) -> tuple[TextTile, str, str] | None:
    """``tile`` with its longest alphabetic word (3-10 letters) replaced, the old and the new word."""
    words = [(li, wi, w) for li, line in enumerate(tile.lines) for wi, w in enumerate(line.split())
             if w.isalpha() and 3 <= len(w) <= 10]
    if not words:
        return None
    li, wi, word = max(words, key=lambda x: len(x[2]))
    new = _replacement(word)
    lines = list(tile.lines)
    parts = lines[li].split()
    parts[wi] = new
    lines[li] = " ".join(parts)
    return dataclasses.replace(tile, lines=tuple(lines)), word, new


def main() -> int:
    inv, cer = TextInvented(), TextCER()
    held = tiles()
    refs = {t.id: render_text_tile(t).astype(np.float32) / 255 for t in held}
    print("| change | text_invented = 0 |\n|---|---|")
    for name, change in BENIGN.items():
        vals = [inv.compute(ImageSample(k, change(r).astype(np.float32), r)).value for k, r in refs.items()]
        print(f"| {name} | {sum(v == 0 for v in vals)}/{len(vals)} |")
    found, readable, lines = 0, 0, []
    for tile in held:
        plant = planted(tile)
        if plant is None:
            continue
        new_tile, old, new = plant
        res = inv.compute(ImageSample(tile.id, render_text_tile(new_tile).astype(np.float32) / 255, refs[tile.id]))
        reads = json.loads(cer.compute(ImageSample(tile.id, refs[tile.id], refs[tile.id])).detail)["reference"]
        readable += old.lower() in reads.lower()
        found += res.value > 0
        lines.append(f"  {tile.id} {tile.font} {tile.size} px, {tile.ground if isinstance(tile.ground, str) else 'flat'}"
                     f": {old} -> {new}: text_invented {res.value:.3f}; the reference reads {reads!r}")
    print(f"planted word found on {found}/{len(lines)} tiles; the reference's OCR reads the word on {readable}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
