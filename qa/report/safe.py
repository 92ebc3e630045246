"""Escaping for everything a report embeds: HTML text, attribute values, and JSON inside ``<script>``.

Every string that comes from the store (decoder names, run ids, captions, notes, metric names, details) is
user-supplied as far as the report is concerned. It goes through :func:`esc` before it reaches HTML, and
through :func:`label` before it reaches a Plotly label (Plotly renders names as HTML-like text and decodes
``&lt;``, ``&gt;``, ``&amp;`` and numeric references, so an escaped name shows as the literal text). JSON placed inside a ``<script>`` element goes through
:func:`script_json`, which leaves no ``<``, ``>`` or ``&`` in the output, so no ``</script>`` or ``<!--`` can
appear in it whatever the data holds.
"""

from __future__ import annotations

import html
import math

#: JSON escapes applied inside <script>: after these the text holds no '<', '>' or '&'
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def esc(value: object) -> str:
    """HTML-escape ``str(value)`` (quotes included, so the result is safe in attribute values too)."""
    return html.escape("" if value is None else str(value), quote=True)


def label(value: object) -> str:
    """Escape ``str(value)`` for a Plotly label (trace name, title, hover text): ``<``, ``>`` and ``&`` as
    entities Plotly decodes, quotes as numeric references (Plotly decodes those too, but not ``&quot;``, which
    :func:`esc` would produce and Plotly would show literally)."""
    text = html.escape("" if value is None else str(value), quote=False)
    return text.replace('"', "&#34;").replace("'", "&#39;")


def script_json(text: str) -> str:
    """Make a JSON document safe to embed verbatim inside ``<script>``.

    The characters replaced only ever occur inside JSON strings, where the ``\\uXXXX`` form is equivalent,
    so ``JSON.parse`` returns the same value.
    """
    for ch, rep in _SCRIPT_ESCAPES.items():
        text = text.replace(ch, rep)
    return text


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table: 4 significant digits; 'inf'/'-inf' spelled out; None -> ''."""
    if value is None:
        return ""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}"


def finite(value: object) -> bool:
    """Whether ``value`` is a finite real number."""
    try:
        return value is not None and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
