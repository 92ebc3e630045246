"""Open a report in headless Chromium from disk: the rendered DOM, console messages, a screenshot, timings.

Used by the browser tests and ``benchmarks/report_render.py``. The browser runs with networking features off
and a throw-away profile; the report's own script records on ``<html>``: ``data-plots-rendered`` (charts drawn),
``data-js-errors`` (errors caught), ``data-thumbs`` / ``data-thumbs-with-image`` (grid thumbnails, and those
whose embedded image applied), ``data-render-ms`` (drawing time) and ``data-ready-ms`` (time from navigation
start until every chart was drawn, parsing of the page and plotly.js included).
"""

from __future__ import annotations

import re
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.report.export import find_browser

#: flags of every headless launch (no network services, no first-run work, throw-away profile added per run)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")
#: a console message in Chromium's stderr log (any level: the report logs nothing when all is well)
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)")
_ATTR = re.compile(r'<html[^>]*?\sdata-{name}="(\d+)"')


@dataclass
class BrowserRun:
    """What one headless launch saw. ``wall_s``: seconds from launch to exit (browser start-up included);
    ``cpu_s``: CPU seconds (user + system) of the browser and its child processes, which a loaded machine does
    not inflate the way it inflates wall time."""

    dom: str
    console: list[str]
    stderr: str
    wall_s: float
    cpu_s: float

    def attr(self, name: str) -> int | None:
        """An integer ``data-<name>`` attribute of ``<html>`` in the rendered DOM, or None."""
        m = re.search(_ATTR.pattern.format(name=re.escape(name)), self.dom)
        return int(m.group(1)) if m else None


def _chromium(browser: str | None) -> str:
    path = browser or find_browser()
    if path is None:
        raise QAError("no Chromium found for the headless check", "apt-get install chromium, or set BROWSER_PATH")
    return path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _launch(browser: str, args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run Chromium to completion; returns (process, wall seconds, CPU seconds of it and its children)."""
    with tempfile.TemporaryDirectory(prefix="qa-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
        t0, c0 = time.perf_counter(), _cpu()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise QAError(f"headless Chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from exc
        return proc, time.perf_counter() - t0, _cpu() - c0


def render(report: Path, browser: str | None = None, timeout: float = 120.0,
           virtual_time_ms: int | None = None, size: tuple[int, int] | None = None) -> BrowserRun:
    """Load ``report`` from disk and dump the DOM after the load event (plus ``virtual_time_ms`` if given), in a
    window of ``size`` (width, height) pixels when given (layout attributes such as ``data-page-width`` depend
    on it)."""
    exe = _chromium(browser)
    args = ["--dump-dom"] + ([f"--virtual-time-budget={virtual_time_ms}"] if virtual_time_ms else [])
    args += [f"--window-size={size[0]},{size[1]}"] if size else []
    proc, wall, cpu = _launch(exe, [*args, Path(report).resolve().as_uri()], timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise QAError(f"headless Chromium failed on {report} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := CONSOLE.search(line))]
    return BrowserRun(proc.stdout, console, proc.stderr, wall, cpu)


def screenshot(report: Path, out: Path, size: tuple[int, int] = (1400, 2400), browser: str | None = None,
               timeout: float = 120.0, fragment: str = "") -> Path:
    """Write a PNG screenshot of the top ``size`` (width, height) pixels of ``report`` to ``out``; ``fragment``
    opens the page at ``#fragment`` (e.g. a candidate-vs-approved comparison, which opens on its target)."""
    exe = _chromium(browser)
    out.parent.mkdir(parents=True, exist_ok=True)
    url = Path(report).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    proc, _, _ = _launch(exe, [f"--window-size={size[0]},{size[1]}", f"--screenshot={out.resolve()}", url], timeout)
    if not out.is_file():
        raise QAError(f"headless Chromium wrote no screenshot of {report} (exit {proc.returncode}): "
                      f"{proc.stderr[-2000:]}")
    return out
