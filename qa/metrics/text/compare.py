"""Compare the OCR reading of an output with that of its reference: error rates, invented characters, a map.

Definitions (``docs/text.md`` has the reasons and the validation):

* **Legible word**: Tesseract's word confidence is at least :data:`LEGIBLE_CONF` and the word has a letter or a
  digit. Word confidence is the certainty of the word's least certain character; the true words of the text
  set's tiles of 16 px and more read at 87-97, while the fragments Tesseract finds in photographic texture
  (edges read as ``A``, ``NY``, ``\\``) mostly stay below 85 (measured in docs/text.md).
* **Reading order**: legible words grouped into rows (a word joins a row when their vertical extents overlap by
  half the smaller height), rows top to bottom, words left to right.
* ``text_cer`` / ``text_wer``: edit distance between the folded (:func:`qa.metrics.text.strings.fold`) reading
  of the output and that of the reference, in characters / words, divided by the reference's length and clipped
  to 1 (an empty reference: 0 when the output has no legible text either, else 1).
* ``text_invented``: the share of the output's letters and digits that the reference does not show there. For
  each output word of confidence >= :data:`CANDIDATE_CONF`, the reference words at its place (:func:`support`:
  every reference word, legible or not, overlapping a third of either box) are aligned with it (semi-global:
  the word against any contiguous part of them); characters no equal folded character explains are *open*.
  A word with open characters is read again from a crop of its box in the output and in the reference
  (:func:`crop_box`, :func:`qa.metrics.text.ocr.read_crop`): invented are the open characters the output's
  crop reads again with confidence and neither the reference's words nor its crop explain. A word below
  :data:`LEGIBLE_CONF` counts only when its crop reads at least half of its characters again with confidence.
  The share is over the characters of the words that count. Lenient towards the reference on purpose: what
  the reference's OCR saw at that place, however unsure, can explain the output; what nothing there explains
  and the OCR reads with confidence twice in the output is text the decoder drew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qa.metrics.text.ocr import Word
from qa.metrics.text.strings import counts, edit_distance, fold, matched_characters

#: least Tesseract word confidence (0-100) of a legible word
LEGIBLE_CONF = 85.0
#: least confidence of a word that a confirmation read of its crop may still make legible ("more likely right
#: than wrong"): a word squeezed between others of another font or size reads at 80-85 in the whole image
CANDIDATE_CONF = 50.0
#: least overlap (intersection / smaller box area) of a reference word with an output word to explain it
SUPPORT_OVERLAP = 1.0 / 3.0
#: margin of a confirmation crop around a word's box, in units of the word's height (at least 2 px): less than
#: the gap between words and between lines, so the crop shows the word and little of its neighbours
CROP_MARGIN = 0.2

#: reads one crop (x0, y0, x1, y1) of the "reference" or the "output" image (:func:`qa.metrics.text.ocr.read_crop`)
CropReader = Callable[[str, tuple[int, int, int, int]], list[Word]]


def legible(word: Word) -> bool:
    """Whether the OCR read ``word`` with confidence (see the module docstring)."""
    return word.conf >= LEGIBLE_CONF and counts(word.text) > 0


def overlaps(a: list[tuple[int, int, int, int]], b: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(len(a), len(b)) float64: for every box of ``a`` and every box of ``b`` (x0, y0, x1, y1), their
    intersection area over the smaller box's area (0 when disjoint or degenerate). All pairs in one array
    operation: a 2048-px page of text has a few hundred words on each side."""
    p = np.asarray(a, np.int64).reshape(-1, 4)[:, None, :]
    q = np.asarray(b, np.int64).reshape(-1, 4)[None, :, :]
    ix = np.minimum(p[..., 2], q[..., 2]) - np.maximum(p[..., 0], q[..., 0])
    iy = np.minimum(p[..., 3], q[..., 3]) - np.maximum(p[..., 1], q[..., 1])
    smaller = np.minimum((p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1]),
                         (q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1]))
    hit = (ix > 0) & (iy > 0) & (smaller > 0)
    return np.where(hit, ix * iy / np.where(hit, smaller, 1), 0.0)


def reading_order(words: list[Word]) -> list[list[Word]]:
    """``words`` grouped into rows, rows top to bottom, words left to right (see the module docstring)."""
    rows: list[list[Word]] = []
    spans: list[tuple[int, int]] = []
    for w in sorted(words, key=lambda w: (w.box[1] + w.box[3], w.box[0])):
        for k, (top, bottom) in enumerate(spans):
            shared = min(bottom, w.box[3]) - max(top, w.box[1])
            if shared * 2 >= min(bottom - top, w.height):
                rows[k].append(w)
                spans[k] = (min(top, w.box[1]), max(bottom, w.box[3]))
                break
        else:
            rows.append([w])
            spans.append((w.box[1], w.box[3]))
    order = sorted(range(len(rows)), key=lambda k: spans[k])
    return [sorted(rows[k], key=lambda w: w.box[0]) for k in order]


def text_of(words: list[Word]) -> str:
    """The words in reading order, one space between words, one newline between rows."""
    return "\n".join(" ".join(w.text for w in row) for row in reading_order(words))


def support(word: Word, reference: list[Word]) -> list[Word]:
    """The reference words at ``word``'s place: those overlapping a third of either box, in reading order."""
    return _near(overlaps([word.box], [r.box for r in reference])[0], reference)


def _near(row: np.ndarray, words: list[Word]) -> list[Word]:
    """The ``words`` whose overlap in ``row`` (one row of :func:`overlaps`) reaches :data:`SUPPORT_OVERLAP`, in
    reading order."""
    near = [words[j] for j in np.flatnonzero(row >= SUPPORT_OVERLAP)]
    return [w for line in reading_order(near) for w in line]


@dataclass(frozen=True)
class WordDiff:
    """One legible output word and what the reference shows at its place. ``invented``: its letters and digits
    the reference does not explain; ``box``: the output word's box (x0, y0, x1, y1)."""

    output: str
    reference: str
    box: tuple[int, int, int, int]
    conf: float
    n_chars: int
    invented: int


@dataclass
class TextComparison:
    """Everything the three text metrics and the report need from one (output, reference) pair."""

    reference_text: str
    output_text: str
    cer: float
    wer: float
    invented: float
    n_reference_chars: int
    n_output_chars: int
    n_invented_chars: int
    words: list[WordDiff] = field(default_factory=list)
    #: reference legible words with no legible output word at their place (text the output lost or garbled)
    lost: list[WordDiff] = field(default_factory=list)


def _rate(errors: int, length: int, hyp_length: int) -> float:
    if length == 0:
        return 0.0 if hyp_length == 0 else 1.0
    return min(1.0, errors / length)


def crop_box(word: Word) -> tuple[int, int, int, int]:
    """``word``'s box grown by :data:`CROP_MARGIN` times its height on every side (at least 2 px)."""
    m = max(2, round(CROP_MARGIN * word.height))
    return word.box[0] - m, word.box[1] - m, word.box[2] + m, word.box[3] + m


def _check(word: Word, said: str, crops: CropReader | None) -> tuple[bool, int]:
    """(read, invented) for an output ``word``: whether it counts as text the output shows, and how many of its
    letters and digits are invented (see the module docstring)."""
    matched = matched_characters(word.text, said)
    open_ = [ch.isalnum() and not ok for ch, ok in zip(word.text, matched, strict=True)]
    if crops is None:
        return legible(word), sum(open_) if legible(word) else 0
    if not any(open_):
        return legible(word), 0
    box = crop_box(word)
    again = " ".join(w.text for w in crops("output", box) if legible(w))
    confirmed = matched_characters(word.text, again)
    if not legible(word) and 2 * sum(c and ch.isalnum() for ch, c in zip(word.text, confirmed, strict=True)) \
            < counts(word.text):
        return False, 0  # a candidate the crop does not read again with confidence
    there = " ".join(w.text for w in crops("reference", box))
    explained = matched_characters(word.text, f"{said} {there}" if said else there)
    return True, sum(1 for o, c, e in zip(open_, confirmed, explained, strict=True) if o and c and not e)


def compare_readings(reference: list[Word], output: list[Word], crops: CropReader | None = None) -> TextComparison:
    """Compare two readings (all words each OCR found, any confidence); see the module docstring. ``crops``:
    confirmation reads of word crops (None: the readings alone decide, and only legible words count)."""
    ref_legible = [w for w in reference if legible(w)]
    out_legible = [w for w in output if legible(w)]
    ref_text, out_text = text_of(ref_legible), text_of(out_legible)
    ref_flat, out_flat = fold(" ".join(ref_text.split())), fold(" ".join(out_text.split()))
    cer = _rate(edit_distance(ref_flat, out_flat), len(ref_flat), len(out_flat))
    ref_words, out_words = ref_flat.split(), out_flat.split()
    wer = _rate(edit_distance(ref_words, out_words), len(ref_words), len(out_words))
    candidates = [w for w in output if w.conf >= CANDIDATE_CONF and counts(w.text)]
    near = overlaps([w.box for w in candidates], [r.box for r in reference])
    diffs = []
    for w, row in zip(candidates, near, strict=True):
        said = " ".join(r.text for r in _near(row, reference))
        read, invented = _check(w, said, crops)
        if read:
            diffs.append(WordDiff(w.text, said, w.box, w.conf, counts(w.text), invented))
    shown = overlaps([r.box for r in ref_legible], [w.box for w in out_legible])
    found = overlaps([r.box for r in ref_legible], [w.box for w in output])
    lost = []
    for k, r in enumerate(ref_legible):
        if not (shown[k] >= SUPPORT_OVERLAP).any():
            said = " ".join(w.text for w in _near(found[k], output))
            lost.append(WordDiff(said, r.text, r.box, r.conf, counts(r.text), 0))
    n_out = sum(d.n_chars for d in diffs)
    n_inv = sum(d.invented for d in diffs)
    return TextComparison(ref_text, out_text, cer, wer, n_inv / n_out if n_out else 0.0, counts(ref_flat), n_out,
                          n_inv, diffs, lost)


def invented_map(shape: tuple[int, int], comparison: TextComparison) -> np.ndarray:
    """(H, W) float32 in [0, 1]: each output word with invented characters filled over its box with the share
    of its letters and digits that are invented (the larger value where boxes overlap); 0 elsewhere."""
    out = np.zeros(shape, np.float32)
    for d in comparison.words:
        if d.invented and d.n_chars:
            x0, y0, x1, y1 = (max(0, v) for v in d.box)
            region = out[y0:y1, x0:x1]
            np.maximum(region, d.invented / d.n_chars, out=region)
    return out
