"""The report's text section: per decoder, the images whose text the output garbled or invented the most, with
"reference says X, output says Y" and crops of the words that differ.

Reads only the per-image rows of the latest runs (``ReportData.image_rows``): ``text_cer``'s detail holds both
readings, ``text_invented``'s the differing words with small PNG crops (:mod:`qa.metrics.text.metrics`). Details
come from the store and are untrusted: JSON that does not parse is skipped, every string is escaped, and a crop
is embedded only when it decodes as base64 to a PNG file.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from qa.report.data import ReportData
from qa.report.safe import esc, fmt

#: images shown per decoder
WORST = 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _json(detail: str) -> dict[str, Any]:
    try:
        found = json.loads(detail)
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _img(data: object, label: str) -> str:
    """An <img> of a base64 PNG crop, or a muted note when it is absent or not a PNG."""
    if not isinstance(data, str) or not data:
        return '<span class="muted">no crop</span>'
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return '<span class="muted">bad crop</span>'
    if not raw.startswith(PNG_MAGIC):
        return '<span class="muted">bad crop</span>'
    return f'<img alt="{esc(label)}" src="data:image/png;base64,{esc(data)}" style="image-rendering:pixelated">'


def _said(text: object) -> str:
    shown = str(text or "").replace("\n", " / ")
    return f"<q>{esc(shown)}</q>" if shown else '<span class="muted">(no text read)</span>'


def _words(detail: dict[str, Any]) -> str:
    rows = []
    for w in detail.get("words", []) if isinstance(detail.get("words"), list) else []:
        if not isinstance(w, dict):
            continue
        what = "lost" if w.get("lost") else f"{esc(w.get('invented', 0))} invented"
        rows.append(f"<tr><td>{_img(w.get('crop_reference'), 'reference')}<br>{_said(w.get('reference'))}</td>"
                    f"<td>{_img(w.get('crop_output'), 'output')}<br>{_said(w.get('output'))}</td>"
                    f"<td>{what}</td></tr>")
    if not rows:
        return ""
    return ('<table class="data"><thead><tr><th>reference says</th><th>output says</th><th>characters</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def text_section(data: ReportData) -> str:
    """HTML of the section, or '' when no latest run has text metrics."""
    by_run: dict[str, dict[str, dict[str, tuple[float, str]]]] = {}
    for r in data.image_rows:
        if r.metric in ("text_cer", "text_invented") and r.status == "ok" and r.value is not None:
            case = by_run.setdefault(r.run_id, {}).setdefault(r.case_id, {})
            if r.metric not in case:  # first seed
                case[r.metric] = (r.value, r.detail)
    if not by_run:
        return ""
    parts = ['<p class="muted">Per decoder, the images whose OCR reading differs most from the reference\'s '
             "(images whose reference reads as text first; then most invented text, then the highest character "
             "error rate). Crops show the luma the OCR "
             "read; definitions in docs/text.md.</p>"]
    for decoder, run in sorted(data.latest.items()):
        cases = by_run.get(run.run_id, {})
        # images whose reference reads as text first: a stray glyph read on a photo is OCR noise, not a garbled sign
        worst = sorted(cases.items(), key=lambda kv: (not _json(kv[1].get("text_cer", (0.0, ""))[1]).get("reference"),
                                                      -kv[1].get("text_invented", (0.0, ""))[0],
                                                      -kv[1].get("text_cer", (0.0, ""))[0], kv[0]))
        worst = [(c, m) for c, m in worst
                 if m.get("text_invented", (0.0, ""))[0] > 0 or m.get("text_cer", (0.0, ""))[0] > 0][:WORST]
        if not cases:
            continue
        parts.append(f"<h3>{esc(decoder)} <span class='muted'>run {esc(run.run_id)}</span></h3>")
        if "text" not in data.set_kinds.get(run.run_id, []):
            parts.append("<p class='muted'>Not a text set (its manifest has no <code>text</code> column): the text "
                         "metrics are reported, not gated, and a few characters read on a photograph are mostly "
                         "OCR noise (docs/text.md).</p>")
        if not worst:
            parts.append(f"<p>All {len(cases)} images: the output reads as the reference (text_cer 0, "
                         "text_invented 0).</p>")
            continue
        for case_id, metrics in worst:
            cer_value, cer_detail = metrics.get("text_cer", (float("nan"), ""))
            inv_value, inv_detail = metrics.get("text_invented", (float("nan"), ""))
            readings = _json(cer_detail)
            parts.append(
                f"<h4>{esc(case_id)}: text_cer {esc(fmt(cer_value))}, text_invented {esc(fmt(inv_value))}</h4>"
                f"<p>reference says {_said(readings.get('reference'))}<br>output says "
                f"{_said(readings.get('output'))}</p>{_words(_json(inv_detail))}")
    return "".join(parts)
