"""What qa writes as Markdown (gate, status, diff: CI job summaries) shows every stored string as text (audit
D5, 2026-12-07): entities and backslashes were put inside code spans, where they show literally, and a sign-off
note's image or link syntax reached the summary as an image or a link."""

from __future__ import annotations

import re

import pytest

from qa.gate.formats import md, md_code


@pytest.mark.parametrize("text", ["pid-20261207-1", "<img src=x onerror=alert(7)>-2026", "a`b``c", "`x`",
                                  "back\\slash|pipe"])
def test_a_code_span_shows_its_text_literally(text: str) -> None:
    span = md_code(text)
    fence = re.match(r"`+", span).group(0)  # type: ignore[union-attr]
    inner = span[len(fence):-len(fence)]
    assert span.endswith(fence) and "`" * len(fence) not in inner  # no run inside closes the span early
    assert inner.strip(" ").replace("\\|", "|") == text  # nothing entity- or backslash-escaped but the pipes
    assert "&lt;" not in span


def test_a_cell_keeps_no_link_image_or_html_syntax() -> None:
    cell = md("![pixel](https://attacker.example/p.png) [approve](https://attacker.example/) <b>x</b> a|b")
    assert "![" not in cell and not re.search(r"(?<!\\)\]\(", cell) and "<b>" not in cell and "a\\|b" in cell
    assert cell.startswith("!\\[pixel\\]")
