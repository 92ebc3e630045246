"""OCR readings shared by the three text metrics: references read once and cached by content hash, outputs read
once per (output, reference) pair in this process.

A reference's reading (every word, any confidence) goes into the store's feature cache like any reference
feature: key (``ocr:tesseract``, :func:`qa.metrics.text.ocr.engine_identity`, image sha256,
:data:`qa.metrics.text.ocr.PREPROCESSING`), the image sha256 being the reference file's (the sample's
``reference_sha256``) or that of its pixels. The words are encoded losslessly as a float32 vector (code points
are below 2**24): ``[n, then per word: conf, x0, y0, x1, y1, line, length, code points...]``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import blake3
import numpy as np

from qa.metrics.base import ImageSample, MetricInputError, NotApplicable
from qa.metrics.feature_cache import (
    CachedExtractor,
    FeatureCache,
    FeatureVectors,
    computation_tag,
    pixels_sha256,
)
from qa.metrics.text import ocr
from qa.metrics.text.compare import TextComparison, compare_readings
from qa.metrics.text.ocr import Word
from qa.store.db import Store

EXTRACTOR = "ocr:tesseract"
#: comparisons kept in memory (the three metrics of one sample ask for the same one in turn)
MEMO_SIZE = 16


def encode_words(words: list[Word]) -> np.ndarray:
    """``words`` as one float32 vector (see the module docstring); :func:`decode_words` inverts it exactly."""
    out: list[float] = [float(len(words))]
    for w in words:
        codes = [float(ord(ch)) for ch in w.text]
        out += [w.conf, *map(float, w.box), float(w.line), float(len(codes)), *codes]
    return np.asarray(out, np.float32)


def decode_words(vec: np.ndarray) -> list[Word]:
    """The words of an :func:`encode_words` vector (MetricInputError when it is malformed)."""
    v = np.asarray(vec, np.float64).ravel()
    try:
        n, i, words = int(v[0]), 1, []
        for _ in range(n):
            conf, x0, y0, x1, y1, line, length = v[i:i + 7]
            i += 7
            text = "".join(chr(int(c)) for c in v[i:i + int(length)])
            i += int(length)
            words.append(Word(text, float(conf), (int(x0), int(y0), int(x1), int(y1)), int(line)))
    except (IndexError, ValueError) as exc:
        raise MetricInputError(f"a cached OCR reading is malformed ({exc})", "delete the store's ocr features") from exc
    if i != len(v):
        raise MetricInputError("a cached OCR reading has trailing values", "delete the store's ocr features")
    return words


def _digest(arr: np.ndarray) -> str:
    """BLAKE3 of an array's shape, dtype and bytes, read in place on 2 threads (the memo key of a comparison:
    about 10 ms for a 2048 px float32 image, a third of SHA-256's time; the feature-cache key stays SHA-256)."""
    data = np.ascontiguousarray(arr)
    h = blake3.blake3(max_threads=2)
    h.update(repr((data.shape, data.dtype.str)).encode())
    h.update(data.data.cast("B"))
    return h.hexdigest()


def _checked(label: str, img: np.ndarray | None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise MetricInputError(f"text metrics: {label} must be an (H, W, 3) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise MetricInputError(f"text metrics: {label} is {arr.shape[1]}x{arr.shape[0]} but the output is "
                               f"{shape[1]}x{shape[0]}", "compare images of the same size (qa resizes nothing)")
    if not np.isfinite(arr).all():
        raise MetricInputError(f"text metrics: {label} contains NaN or Inf values")
    return arr


class Readings:
    """Reference readings through a feature cache, and a small memo of comparisons (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: OrderedDict[tuple[str, str], TextComparison] = OrderedDict()
        self.n_reference_reads = 0
        self.n_output_reads = 0

    def extractor(self, store: Store | None) -> CachedExtractor:
        """A cached extractor of reference readings (one image per call: readings differ in length). Without a
        store it still names its key, so the Ray engine ships and stores its readings."""
        reader = _Reader(self)
        cache: FeatureVectors | None = None
        if store is not None:
            cache = FeatureCache(store, reader.name, reader.sha256, reader.preprocessing)
        return CachedExtractor(reader, cache)

    def reference_words(self, extractor: CachedExtractor, sha: str, reference: np.ndarray) -> list[Word]:
        """The reading of ``reference`` (cached under ``sha``; read on a miss)."""
        return decode_words(extractor([sha], [reference])[0])

    def compare(self, sample: ImageSample, extractor: CachedExtractor) -> TextComparison:
        """The comparison of ``sample``'s output with its reference (NotApplicable without a reference)."""
        if sample.reference is None:
            raise NotApplicable("not applicable: needs reference"
                                + (f" ({sample.reference_note})" if sample.reference_note else ""))
        out = _checked("output", sample.output)
        ref = _checked("reference", sample.reference, out.shape)
        key = (_digest(out), sample.reference_sha256 or _digest(ref))
        with self._lock:
            found = self._memo.get(key)
        if found is not None:
            return found
        ref_words = self.reference_words(extractor, sample.reference_sha256 or pixels_sha256(ref), ref)
        self.n_output_reads += 1
        out_words = ocr.read_words(out)

        def crops(which: str, box: tuple[int, int, int, int]) -> list[Word]:
            return ocr.read_crop(ref if which == "reference" else out, box)

        result = compare_readings(ref_words, out_words, crops)
        with self._lock:
            self._memo[key] = result
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return result


class _Reader:
    """The OCR as a keyed feature extractor (:class:`qa.metrics.feature_cache.KeyedExtractor`)."""

    name = EXTRACTOR
    #: the OCR's settings and the code between the file and the engine (the engine itself: ``sha256``)
    preprocessing = ocr.PREPROCESSING + computation_tag(("qa.metrics.text.ocr", "qa.metrics.text.readings"))

    def __init__(self, readings: Readings) -> None:
        self.readings = readings
        self.sha256 = ocr.engine_identity()

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        if len(images) != 1:
            raise MetricInputError("the OCR feature extractor reads one image per call")
        self.readings.n_reference_reads += 1
        return encode_words(ocr.read_words(images[0]))[None, :]


#: the process-wide readings (every text metric instance shares them)
READINGS = Readings()
