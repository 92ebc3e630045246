"""Text metrics: what a decoder garbles (``text_cer``, ``text_wer``) and what text it invents (``text_invented``).

Each compares the OCR reading of the output with that of its reference (:mod:`qa.metrics.text.compare`; the
definitions and their validation are in ``docs/text.md``). Where the OCR engine is absent every text metric is
``missing`` with the command that installs it, never 0. References are read once and cached by content hash in
the store's feature cache (:mod:`qa.metrics.text.readings`); the three metrics share one reading per output.

Details (``MetricValue.detail``, JSON) feed the report's text section (:mod:`qa.report.text_crops`):
``text_cer`` stores ``{"reference": ..., "output": ...}`` (the two readings in reading order) and
``text_invented`` the words that differ, with their boxes and small luma crops of both images.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np

from qa.metrics.base import ImageMetric, ImageSample, MetricValue
from qa.metrics.feature_cache import CachedExtractor
from qa.metrics.text import ocr
from qa.metrics.text.compare import TextComparison, WordDiff, invented_map
from qa.metrics.text.readings import READINGS
from qa.store.db import Store

#: most characters of each reading kept in ``text_cer``'s detail
MAX_TEXT = 2000
#: most differing words (with crops) kept in ``text_invented``'s detail
MAX_WORDS = 4
#: crops in the detail are scaled to at most this height and width (pixels)
CROP_HEIGHT, CROP_WIDTH = 48, 320


class _TextMetric(ImageMetric):
    """Shared plumbing: the OCR engine's availability, the reference cache, one comparison per sample."""

    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference",)

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._extractor: CachedExtractor | None = None

    def unavailable_reason(self) -> str | None:
        """Why no text metric can run here (OCR engine or English model absent) and how to install it."""
        return ocr.unavailable_reason()

    def extractor(self) -> CachedExtractor:
        """The cached reader of reference images (feature cache of the store, when there is one)."""
        if self._extractor is None:
            self._extractor = READINGS.extractor(self.store)
        return self._extractor

    def comparison(self, sample: ImageSample) -> TextComparison:
        return READINGS.compare(sample, self.extractor())


class TextCER(_TextMetric):
    """Character error rate of the output's OCR reading against the reference's, in [0, 1] (0 = same text).

    Edit distance of the two readings in reading order (legible words, case and look-alike glyphs folded) over
    the reference reading's length, clipped to 1; an empty reference scores 0 when the output has no legible
    text either, else 1."""

    name = "text_cer"
    version = "1"
    unit = "fraction of characters"
    description = "OCR character error rate of the output against the reference (text garbled)"

    def compute(self, sample: ImageSample) -> MetricValue:
        c = self.comparison(sample)
        detail = json.dumps({"reference": c.reference_text[:MAX_TEXT], "output": c.output_text[:MAX_TEXT]},
                            ensure_ascii=False)
        return MetricValue(c.cer, detail=detail, extra={"reference_chars": float(c.n_reference_chars)})


class TextWER(_TextMetric):
    """Word error rate of the output's OCR reading against the reference's, in [0, 1] (0 = same words)."""

    name = "text_wer"
    version = "1"
    unit = "fraction of words"
    description = "OCR word error rate of the output against the reference"

    def compute(self, sample: ImageSample) -> MetricValue:
        c = self.comparison(sample)
        return MetricValue(c.wer, detail=f"{len(c.reference_text.split())} reference words")


class TextInvented(_TextMetric):
    """Share of the letters and digits the output's OCR reads with confidence that the reference's reading does
    not explain at the same place, in [0, 1]: text the decoder made up. ``map``: each word with invented
    characters filled over its box with its invented share (0 elsewhere)."""

    name = "text_invented"
    version = "1"
    unit = "fraction of characters"
    description = "letters and digits in the output that the reference does not show there (invented text)"

    def compute(self, sample: ImageSample) -> MetricValue:
        c = self.comparison(sample)
        assert sample.reference is not None  # comparison() raised NotApplicable otherwise
        shown = _worst(c)
        words = [{"output": d.output, "reference": d.reference, "box": list(d.box), "conf": round(d.conf, 1),
                  "chars": d.n_chars, "invented": d.invented, "lost": d in c.lost,
                  "crop_reference": _crop_png(sample.reference, d.box),
                  "crop_output": _crop_png(sample.output, d.box)} for d in shown]
        detail = json.dumps({"invented_chars": c.n_invented_chars, "output_chars": c.n_output_chars,
                             "words": words}, ensure_ascii=False)
        return MetricValue(c.invented, map=invented_map(sample.output.shape[:2], c), detail=detail,
                           extra={"invented_chars": float(c.n_invented_chars),
                                  "output_chars": float(c.n_output_chars)})


def _worst(c: TextComparison) -> list[WordDiff]:
    """Up to :data:`MAX_WORDS` words to show: invented ones first (most invented characters first), then
    reference words the output lost."""
    invented = sorted((d for d in c.words if d.invented), key=lambda d: (-d.invented, d.box[1], d.box[0]))
    return (invented + c.lost)[:MAX_WORDS]


def _crop_png(image: np.ndarray, box: tuple[int, int, int, int]) -> str:
    """base64 PNG of the luma of ``box`` (grown by a quarter of its height), at most CROP_HEIGHT x CROP_WIDTH."""
    from PIL import Image

    h, w = image.shape[:2]
    m = max(2, (box[3] - box[1]) // 4)
    x0, y0, x1, y1 = max(0, box[0] - m), max(0, box[1] - m), min(w, box[2] + m), min(h, box[3] + m)
    if x1 <= x0 or y1 <= y0:
        return ""
    crop = Image.fromarray(ocr.luma_uint8(image[y0:y1, x0:x1]))
    crop.thumbnail((CROP_WIDTH, CROP_HEIGHT), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    crop.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")
