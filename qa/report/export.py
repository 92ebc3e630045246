"""Static PNG export of the report's charts (for slide decks) with kaleido, which drives a local Chromium.

Nothing is downloaded: the browser must be installed (Debian: ``apt-get install chromium``; or point
``BROWSER_PATH`` at a Chrome/Chromium binary), plotly.js comes from the plotly package and MathJax is off.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

from qa.errors import QAError

#: executable names searched on PATH, in order
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: pixel size of exported charts (the figure's own height wins when it has one)
WIDTH, HEIGHT = 1400, 600


def find_browser() -> str | None:
    """Path of a Chromium-family browser: $BROWSER_PATH if it is executable, else the first on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def export_pngs(figures: dict[str, go.Figure], out_dir: Path, timeout: float = 120.0) -> list[Path]:
    """Write each figure as ``out_dir/<name>.png``; returns the paths written.

    Raises :class:`QAError` naming what is missing when kaleido or a browser is absent.
    """
    try:
        import kaleido
    except ImportError as exc:
        raise QAError("PNG export needs the kaleido package, which is not installed",
                      "pip install 'qa[export]' (kaleido>=1), or leave out --png") from exc
    browser = find_browser()
    if browser is None:
        where = f"BROWSER_PATH={os.environ['BROWSER_PATH']!r} is not executable" if os.environ.get("BROWSER_PATH") \
            else f"none of {', '.join(BROWSER_NAMES)} is on PATH"
        raise QAError(f"PNG export needs Chromium for kaleido: {where}",
                      "install it (Debian: apt-get install chromium) or set BROWSER_PATH; or leave out --png")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, paths = [], []
    for name, fig in figures.items():
        path = out_dir / f"{name}.png"
        height = fig.layout.height or HEIGHT
        jobs.append({"fig": fig, "path": str(path), "opts": {"format": "png", "width": WIDTH, "height": height}})
        paths.append(path)
    if not jobs:
        return []
    try:
        kaleido.write_fig_from_object_sync(jobs, kopts={"path": browser, "mathjax": False, "timeout": timeout},
                                           cancel_on_error=True)
    except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise many kinds; name the browser used
        raise QAError(f"PNG export with kaleido and {browser} failed: {type(exc).__name__}: {exc}",
                      "check that this Chromium starts headless (try `chromium --headless --dump-dom about:blank`)") \
            from exc
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise QAError(f"kaleido reported success but did not write {', '.join(map(str, missing))}")
    return paths
