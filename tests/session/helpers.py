"""What the tests that run the shipped suites with ``pytester`` share: the suites folder and the inner options."""

from __future__ import annotations

from pathlib import Path

#: options of every inner run: no cache, no hypothesis plugin (in-process runs would re-import it each time)
INNER = ("-p", "no:hypothesispytest", "-W", "ignore::pytest.PytestAssertRewriteWarning")
SUITES = Path(__file__).resolve().parents[2] / "suites"
