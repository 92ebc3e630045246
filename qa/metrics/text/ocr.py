"""The OCR engine: Tesseract (LSTM, English) through the ``tesserocr`` bindings, reading words with boxes.

:func:`read_words` turns an (H, W, 3) float image in [0, 1] into :class:`Word` s: the recognised string, Tesseract's
word confidence (0-100), the box in pixels and the line it belongs to. The engine reads the Rec. 601 luma of the
image, rounded to 8 bits, at the image's own resolution, with sparse-text page segmentation (text anywhere, no
assumption of a page layout). Nothing is downloaded: the engine is the ``tesserocr`` wheel (it bundles
libtesseract) plus the English model of the Debian package ``tesseract-ocr-eng`` (or ``$TESSDATA_PREFIX``).
:func:`unavailable_reason` says what is missing and how to install it.

Large images are read in horizontal strips of about :data:`STRIP_ROWS` rows, in parallel (one engine instance
per thread: Tesseract's API object is not thread-safe; recognition releases the GIL). The strips are a function of
the image's height only, so a reading is the same on every machine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.metrics.feature_cache import to_uint8

LANGUAGE = "eng"
#: page segmentation: 11 = sparse text (find as much text as possible, in no particular order)
PAGE_SEGMENTATION = 11
#: page segmentation of a confirmation read of one word's crop: 7 = a single text line
CROP_SEGMENTATION = 7
#: a crop is read at this many times its size (bicubic), so that small text is read as well as large text
CROP_SCALE = 2
#: an image is read in horizontal strips of about this many rows (the same for every machine, so a reading
#: depends on the image only); strips are read in parallel, one thread per core up to :data:`MAX_THREADS`
STRIP_ROWS = 1024
#: each strip reaches this many rows past its cut, so any word up to twice as tall is whole in the strip that
#: keeps it (a word belongs to the strip that holds its centre)
STRIP_MARGIN = 256
MAX_THREADS = 2
#: rows of an image converted to luma at a time (:func:`luma_uint8`)
LUMA_ROWS = 64
#: everything that changes a reading besides the engine and model (part of the feature-cache key)
PREPROCESSING = (f"luma601-uint8;native-resolution;psm{PAGE_SEGMENTATION};oem1-lstm;{LANGUAGE};"
                 f"strips{STRIP_ROWS}+{STRIP_MARGIN}")
#: where Debian, Homebrew and source builds put the language models (``$TESSDATA_PREFIX`` is tried first)
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata")
INSTALL_HINT = ("install the OCR engine: `pip install 'qa[ocr]'` (the tesserocr bindings, which bundle "
                "libtesseract) and `apt-get install tesseract-ocr-eng` (the English model; or set "
                "TESSDATA_PREFIX to a folder holding eng.traineddata)")


class OCRUnavailable(QAError):
    """The OCR engine or its English model is not installed here."""


@dataclass(frozen=True)
class Word:
    """One recognised word. ``box``: (x0, y0, x1, y1) in pixels, x1/y1 exclusive. ``conf``: Tesseract's word
    confidence in [0, 100] (the certainty of its least certain character). ``line``: index of the text line in
    the engine's output (words of one line share it)."""

    text: str
    conf: float
    box: tuple[int, int, int, int]
    line: int

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def tessdata_dir() -> Path | None:
    """The folder holding ``eng.traineddata``: ``$TESSDATA_PREFIX`` (or its ``tessdata`` subfolder), else the
    first of :data:`TESSDATA_DIRS` that has it; None when there is none."""
    candidates = []
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix:
        candidates += [Path(prefix), Path(prefix) / "tessdata"]
    candidates += [Path(d) for d in TESSDATA_DIRS]
    for folder in candidates:
        if (folder / f"{LANGUAGE}.traineddata").is_file():
            return folder
    return None


def unavailable_reason() -> str | None:
    """None when the engine can read here; else what is missing and the command that installs it."""
    if importlib.util.find_spec("tesserocr") is None:
        return f"OCR engine absent (Python package tesserocr not installed); {INSTALL_HINT}"
    if tessdata_dir() is None:
        return (f"OCR model absent ({LANGUAGE}.traineddata not found in $TESSDATA_PREFIX or "
                f"{', '.join(TESSDATA_DIRS)}); {INSTALL_HINT}")
    return None


def require() -> Path:
    """The tessdata folder; :class:`OCRUnavailable` with the fix when the engine cannot run."""
    reason = unavailable_reason()
    folder = tessdata_dir()
    if reason or folder is None:
        raise OCRUnavailable(reason or "OCR model absent", INSTALL_HINT)
    return folder


@lru_cache(maxsize=4)
def _model_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def engine_identity() -> str:
    """sha256 over the engine version, the model file's sha256 and :data:`PREPROCESSING`: the part of the
    feature-cache key that changes whenever a reading could change."""
    folder = require()
    import tesserocr

    version = str(tesserocr.tesseract_version()).split("\n", 1)[0]
    model = _model_sha256(str(folder / f"{LANGUAGE}.traineddata"))
    return hashlib.sha256(f"{version}\0{model}\0{PREPROCESSING}".encode()).hexdigest()


_local = threading.local()


def _api(psm: int) -> Any:
    folder = require()  # every time: a model removed since the last read is reported, not used from memory
    apis = getattr(_local, "apis", None)
    if apis is None:
        apis = _local.apis = {}
    if psm not in apis:
        import tesserocr

        apis[psm] = tesserocr.PyTessBaseAPI(path=str(folder), lang=LANGUAGE, psm=psm,
                                            oem=tesserocr.OEM.LSTM_ONLY)
    return apis[psm]


def luma_uint8(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (H, W) uint8 of an (H, W, 3) image: float in [0, 1] is first rounded to 8-bit RGB (so a
    reading depends only on the 8-bit pixels, which is what the caches hash), then
    ``(299 R + 587 G + 114 B + 500) // 1000`` in integers. Computed in blocks of :data:`LUMA_ROWS` rows, whose
    temporaries stay in the CPU cache (a 2048-px image in about a sixth of the time of one whole-image pass)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    out = np.empty(arr.shape[:2], np.uint8)
    for top in range(0, arr.shape[0], LUMA_ROWS):
        block = arr[top:top + LUMA_ROWS]
        rgb = (block if block.dtype == np.uint8 else to_uint8(block)).astype(np.int32)
        out[top:top + LUMA_ROWS] = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000
    return out


def threads() -> int:
    """OCR threads used here: the cores this process may use, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def strips(height: int) -> list[tuple[int, int, int, int]]:
    """(first row, end row, kept from, kept until) of each strip of an image ``height`` rows tall: ``height //
    STRIP_ROWS`` strips (at least one) with equal cuts, each reaching :data:`STRIP_MARGIN` rows past its cuts."""
    n = max(1, height // STRIP_ROWS)
    cuts = [round(k * height / n) for k in range(n + 1)]
    return [(max(0, cuts[k] - STRIP_MARGIN), min(height, cuts[k + 1] + STRIP_MARGIN), cuts[k], cuts[k + 1])
            for k in range(n)]


def read_words(image: np.ndarray) -> list[Word]:
    """Every word Tesseract finds in ``image`` (float (H, W, 3) in [0, 1], or uint8), strip by strip
    (:func:`strips`), in the engine's order within a strip.

    Raises :class:`OCRUnavailable` when the engine or model is absent, ValueError for a wrong shape."""
    luma = luma_uint8(image)
    parts = strips(luma.shape[0])
    require()

    def one(part: tuple[int, int, int, int]) -> list[Word]:
        top, end, keep_from, keep_until = part
        found = _recognise(luma[top:end], PAGE_SEGMENTATION)
        moved = [replace(w, box=(w.box[0], w.box[1] + top, w.box[2], w.box[3] + top)) for w in found]
        return [w for w in moved if keep_from <= (w.box[1] + w.box[3]) // 2 < keep_until]

    if len(parts) == 1:
        return one(parts[0])
    with ThreadPoolExecutor(max_workers=threads()) as pool:
        results = list(pool.map(one, parts))
    words, lines = [], 0
    for found in results:
        words += [replace(w, line=w.line + lines) for w in found]
        lines += 1 + max((w.line for w in found), default=-1)
    return words


def read_crop(image: np.ndarray, box: tuple[int, int, int, int]) -> list[Word]:
    """The words of one crop ``box`` (x0, y0, x1, y1, clipped to the image) of ``image``, read as a single text
    line at :data:`CROP_SCALE` times its size, its edge pixels repeated outwards by half its height (the quiet
    zone around a line that Tesseract expects); boxes are in that padded, scaled crop's pixels."""
    h, w = np.shape(image)[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x1 <= x0 or y1 <= y0:
        return []
    from PIL import Image

    pad = max(2, (y1 - y0) // 2)
    crop = Image.fromarray(np.pad(luma_uint8(image[y0:y1, x0:x1]), pad, mode="edge"))
    crop = crop.resize((crop.width * CROP_SCALE, crop.height * CROP_SCALE), Image.Resampling.BICUBIC)
    return _recognise(np.asarray(crop), CROP_SEGMENTATION)


def _recognise(luma: np.ndarray, psm: int) -> list[Word]:
    import tesserocr

    luma = np.ascontiguousarray(luma)
    h, w = luma.shape
    api = _api(psm)
    api.SetImageBytes(luma.tobytes(), w, h, 1, w)
    api.SetSourceResolution(70)  # what Tesseract assumes for an image without one, said explicitly
    api.Recognize()
    words: list[Word] = []
    it = api.GetIterator()
    if it is None:
        return words
    level, line = tesserocr.RIL.WORD, -1
    while True:
        if it.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
            line += 1
        text = it.GetUTF8Text(level) if not it.Empty(level) else None
        box = it.BoundingBox(level)
        if text and text.strip() and box is not None:
            x0, y0, x1, y1 = (int(v) for v in box)
            words.append(Word(text.strip(), float(it.Confidence(level)), (x0, y0, x1, y1), max(line, 0)))
        if not it.Next(level):
            break
    api.Clear()
    return words
