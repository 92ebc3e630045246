"""The OCR adapter against the Tesseract command-line program (a separate build, read through its TSV output),
its fail-closed behaviour where the engine is absent, and the reference cache."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qa.imageio import load_image
from qa.metrics.base import ImageSample
from qa.metrics.text import ocr
from qa.metrics.text.compare import legible
from qa.metrics.text.metrics import TextCER, TextInvented, TextWER
from qa.metrics.text.readings import READINGS, decode_words, encode_words
from qa.store import Store
from qa.store.features import get_features
from tests.helpers import needs_ocr, sign

TEXT_SET = Path(__file__).resolve().parents[3] / "reference_sets" / "text"
FLAT_TILES = ("exit-sign", "no-parking", "platform", "opening-hours", "caution", "batch-label", "menu", "street-names")


def _cli_words(luma: np.ndarray, tmp: Path) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    path = tmp / "luma.png"
    Image.fromarray(luma).save(path)
    tsv = subprocess.run(["tesseract", str(path), "stdout", "--psm", "11", "--oem", "1", "-l", "eng", "tsv"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    out = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row["level"] == "5" and row["text"].strip():
            x, y, w, h = (int(row[k]) for k in ("left", "top", "width", "height"))
            out.append((row["text"].strip(), float(row["conf"]), (x, y, x + w, y + h)))
    return out


@needs_ocr
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract program (Debian tesseract-ocr) is absent")
@pytest.mark.parametrize("tile", FLAT_TILES)
def test_adapter_reads_what_the_tesseract_program_reads(tile: str, tmp_path: Path) -> None:
    image = load_image(TEXT_SET / f"{tile}.png").pixels
    ours = [w for w in ocr.read_words(image) if legible(w)]
    cli = [w for w in _cli_words(ocr.luma_uint8(image), tmp_path) if w[1] >= 85 and any(c.isalnum() for c in w[0])]
    assert [w.text for w in ours] == [w[0] for w in cli]
    for w, (_, conf, box) in zip(ours, cli, strict=True):
        assert max(abs(a - b) for a, b in zip(w.box, box, strict=True)) <= 2
        assert abs(w.conf - conf) <= 10  # two builds (Debian 5.3, the wheel's 5.5): confidences differ a little


def test_luma_is_rec601_of_the_8bit_pixels() -> None:
    rng = np.random.default_rng(1)
    img = rng.random((2 * ocr.LUMA_ROWS + 5, 7, 3)).astype(np.float32)  # three blocks, the last one partial
    u8 = np.floor(img.astype(np.float64) * 255 + 0.5)
    expected = np.floor(u8 @ np.array([0.299, 0.587, 0.114]) + 0.5 + 1e-9)
    assert np.array_equal(ocr.luma_uint8(img), expected.astype(np.uint8))
    assert np.array_equal(ocr.luma_uint8(u8.astype(np.uint8)), expected.astype(np.uint8))


def test_engine_absent_is_missing_with_the_fix_never_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    monkeypatch.setattr(ocr, "TESSDATA_DIRS", ())
    reason = ocr.unavailable_reason()
    assert reason is not None and "apt-get install tesseract-ocr-eng" in reason and "qa[ocr]" in reason
    for metric in (TextCER(), TextWER(), TextInvented()):
        assert metric.unavailable_reason() == reason
    with pytest.raises(ocr.OCRUnavailable, match="tesseract-ocr-eng"):
        ocr.read_words(np.zeros((32, 32, 3), np.float32))


def test_engine_absent_gives_missing_rows_in_qa_score(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qa.score import score_folders

    monkeypatch.setattr(ocr, "unavailable_reason", lambda: "OCR engine absent; install it: apt-get install x")
    for folder in ("ref", "out"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / folder / "a.png")
    score_folders(tmp_path / "ref", [tmp_path / "out"], tmp_path / "s.csv", metrics=["text_cer", "text_invented"])
    rows = list(csv.DictReader(open(tmp_path / "s.csv", encoding="utf-8")))
    assert {r["status"] for r in rows} == {"missing"} and all("apt-get install" in r["detail"] for r in rows)
    assert all(r["value"] in ("", "nan") for r in rows)


def test_encoded_readings_round_trip() -> None:
    words = [ocr.Word("Café’s", 96.25, (1, 2, 30, 40), 0), ocr.Word("€12", 51.5, (0, 0, 9, 9), 3),
             ocr.Word("x", 0.0, (5, 5, 6, 6), 3)]
    assert decode_words(encode_words(words)) == words
    assert decode_words(encode_words([])) == []


@needs_ocr
def test_a_reference_is_read_once_and_then_served_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    ref = sign(("NORTH GATE", "Platform 7"))
    out = sign(("SOUTH GATE", "Platform 7"))
    READINGS._memo.clear()
    before = READINGS.n_reference_reads
    first = TextInvented(store=store).compute(ImageSample("a", out, ref))
    assert READINGS.n_reference_reads == before + 1 and first.value > 0
    READINGS._memo.clear()  # a new process: only the store remembers
    again = TextInvented(store=store).compute(ImageSample("a", out.copy(), ref.copy()))
    assert READINGS.n_reference_reads == before + 1 and again.value == first.value
    extractor = TextInvented(store=store).extractor()
    assert extractor.cache is not None
    from qa.metrics.feature_cache import pixels_sha256

    stored = get_features(store, extractor.cache.key, [pixels_sha256(ref)])
    assert [w.text for w in decode_words(next(iter(stored.values())))][:2] == ["NORTH", "GATE"]


@needs_ocr
def test_ray_workers_ship_reference_readings_under_the_readers_key() -> None:
    from qa.engine.ray_worker import ShippedFeatureCache

    ref, out = sign(("EXIT", "Stairs B")), sign(("EXIT", "Stairs C"))
    READINGS._memo.clear()
    worker = TextCER()  # in a worker: no store; the engine gives its extractor a shipped cache by its key
    ext = worker.extractor()
    assert ext.key is not None and ext.key[0] == "ocr:tesseract"
    ext.cache = ShippedFeatureCache(ext.key, {})
    worker.compute(ImageSample("a", out, ref))
    drained = ext.cache.drain()  # what the worker sends back for the driver to store
    assert len(drained) == 1
    READINGS._memo.clear()
    before = READINGS.n_reference_reads
    other = TextCER()
    other.extractor().cache = ShippedFeatureCache(ext.key, drained)  # the next worker gets it shipped
    assert other.compute(ImageSample("a", out.copy(), ref.copy())).value > 0
    assert READINGS.n_reference_reads == before
