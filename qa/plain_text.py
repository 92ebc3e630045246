"""Text from outside qa (image ids and file names, captions, decoder names, reviewer names, sign-off notes)
made safe where it is shown: a terminal or CI log, a Markdown summary, a CSV a spreadsheet opens.

*Unsafe* characters are the control characters (Unicode category Cc: ESC starts terminal sequences that clear
the screen, recolour, retitle or set the clipboard; CR and the other line breaks end a Markdown line early),
the line and paragraph separators (Zl, Zp) and the bidirectional controls (``U+202E`` shows ``x\\u202egnp.exe``
as ``xexe.png``). Where qa takes such text as a name (a manifest id, a reviewer, a sign-off note, a decoder name)
it refuses it; everything it prints goes through :class:`EscapingStream` (the ``qa`` command), so text stored
before, or read from file names, is shown escaped (``\\x1b``), never obeyed.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Any, TextIO

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_unsafe(ch: str) -> bool:
    """Whether one character is a control, a line or paragraph separator or a bidirectional control."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS


def unsafe_characters(text: str, allow: str = "") -> list[str]:
    """The unsafe characters of ``text`` not in ``allow``, as code points (``U+001B``), each once, in order."""
    return list(dict.fromkeys(f"U+{ord(c):04X}" for c in text if is_unsafe(c) and c not in allow))


def refusal(what: str, text: str, allow: str = "") -> str:
    """An error message for a name holding unsafe characters (but those in ``allow``), or "" when it holds none."""
    found = unsafe_characters(text, allow)
    if not found:
        return ""
    return (f"{what} {escaped(text)!r} holds control or bidirectional characters ({', '.join(found)}); it is shown "
            "in terminals, CI summaries and reports, where they would be obeyed: use plain text")


def _escape(ch: str) -> str:
    if ch in "\n\r\t":
        return repr(ch)[1:-1]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str, keep: str = "") -> str:
    """``text`` with every unsafe character but those in ``keep`` written as a visible escape (``\\x1b``,
    ``\\u202e``); safe text comes back unchanged."""
    if all(not is_unsafe(c) or c in keep for c in text):
        return text
    return "".join(_escape(c) if is_unsafe(c) and c not in keep else c for c in text)


def one_line(text: str) -> str:
    """``text`` on one line: each line break a space, any other unsafe character escaped (for Markdown cells)."""
    return escaped("".join(" " if c in LINE_BREAKS else c for c in text))


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string starting with ``= + - @``, tab or CR (which Excel,
    LibreOffice and Google Sheets would run as a formula) gets a leading ``'``, the OWASP rule; anything else,
    numbers included, is returned as it is."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


def csv_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame whose text cells went through :func:`csv_cell` (for ``to_csv``; Parquet
    keeps the text as it is, for programs)."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = frame.copy()
    for col in out.columns:
        if is_object_dtype(out[col].dtype) or is_string_dtype(out[col].dtype):
            out[col] = out[col].astype(object).map(csv_cell)
    return out


class EscapingStream(io.TextIOBase):
    """A text stream that writes to ``raw`` with every unsafe character but newline and tab escaped.

    ``raw`` stays reachable (a progress bar writes its carriage returns there); every other attribute
    (``isatty``, ``fileno``, ``encoding``, ``buffer``) is the raw stream's."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw

    def write(self, s: str) -> int:
        self.raw.write(escaped(s, keep="\n\t"))
        return len(s)

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.raw, "encoding", None) or "utf-8")

    def fileno(self) -> int:
        return self.raw.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self.raw, name)


def raw_stream(stream: TextIO) -> TextIO:
    """The stream under an :class:`EscapingStream` (for a progress bar's own control characters), else itself."""
    return stream.raw if isinstance(stream, EscapingStream) else stream
