"""The report's text section: worst crops with what each image says, from the store, escaped."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from qa.engine.run import RunConfig, RunEngine
from qa.report.build import write_report
from qa.report.data import ReportData, RunInfo, Selection, now_utc
from qa.report.text_crops import text_section
from qa.store import Store
from qa.store.records import ImageRow
from tests.helpers import needs_ocr, sign, write_set


def _data(rows: list[ImageRow]) -> ReportData:
    data = ReportData(selection=Selection(), db_path="x", generated_at=now_utc())
    data.latest = {"dec": RunInfo(run_id="r1", decoder="dec")}
    data.image_rows = rows
    return data


def test_section_escapes_details_and_embeds_only_png_crops() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()
    words = [{"output": "<script>x</script>", "reference": "EXIT", "invented": 2, "crop_reference": png,
              "crop_output": base64.b64encode(b"<svg onload=alert(1)>").decode()}]
    rows = [ImageRow("r1", "case<1>", 0, "text_cer", 0.5, "ok", json.dumps({"reference": "EXIT", "output": "E<b>"})),
            ImageRow("r1", "case<1>", 0, "text_invented", 0.25, "ok", json.dumps({"words": words})),
            ImageRow("r1", "clean", 0, "text_cer", 0.0, "ok", "not json"),
            ImageRow("r1", "other", 0, "text_invented", 0.1, "ok", "{broken")]
    html = text_section(_data(rows))
    assert "<script>" not in html and "&lt;script&gt;" in html and "case&lt;1&gt;" in html
    assert "E&lt;b&gt;" in html and f"data:image/png;base64,{png}" in html and "bad crop" in html
    assert html.index("case&lt;1&gt;") < html.index("other")  # most invented first
    assert "clean" not in html  # nothing differs there
    assert text_section(_data([ImageRow("r1", "a", 0, "psnr", 30.0, "ok", "")])) == ""


@needs_ocr
def test_report_shows_reference_says_output_says_for_a_replaced_word(tmp_path: Path) -> None:
    refset = write_set(tmp_path / "set", {"gate": sign(("NORTH GATE", "Platform 7"))}, {"gate": "NORTH GATE"})
    store = Store(tmp_path / "qa.duckdb")
    RunEngine(store).start(RunConfig(decoder="identity", reference_set=str(refset), progress=False,
                                     metrics=["text_cer", "text_invented"]))
    html = write_report(store, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="text"' in html and "the output reads as the reference" in html


def test_on_a_photo_set_a_stray_glyph_does_not_outrank_a_garbled_sign_and_is_called_noise() -> None:
    """Review audit 2026-12-07: on a set without a text column, "A" read on a coffee photo (text_cer 1) was listed
    above a sign the decoder garbled (0.95), with no word that such readings are ungated OCR noise."""
    rows = [ImageRow("r1", "coffee", 0, "text_cer", 1.0, "ok", json.dumps({"reference": "", "output": "A"})),
            ImageRow("r1", "sign", 0, "text_cer", 0.95, "ok",
                     json.dumps({"reference": "EMERGENCY", "output": "ESM SCENWCY"}))]
    data = _data(rows)
    html = text_section(data)
    assert html.index("sign") < html.index("coffee") and "Not a text set" in html
    data.set_kinds = {"r1": ["text"]}
    assert "Not a text set" not in text_section(data)
