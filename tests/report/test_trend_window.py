"""The report's trend panels: the approved run drawn even when it is older than the window (report audit M5), gaps
where a run lacks a metric (L1), and a y-range set by the points, not by a huge allowed-loss band (L5)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from qa.gate.signing import TRUSTED_ENV
from qa.gate.signoff import record_signoff
from qa.report import charts
from qa.report.data import Selection, load
from qa.store import Store
from tests.gate.signing_helpers import make_reviewer
from tests.report.test_trend_lines import DEFAULT_A, HALF, T0, _run

#: invented_contradicting's shipped margin (0.0002 absolute) against this approved mean is a 4.08e4 % band
TINY = 4.9e-7


@pytest.fixture(scope="module")
def approved_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    """vae approved on day 0, its next run on day 14 (psnr 30 -> 29; ssim changes version 1 -> 2)."""
    root = tmp_path_factory.mktemp("trend_window")
    store = Store(root / "qa.duckdb")
    _run(store, "vae-1", 0, "vae", "default", DEFAULT_A,
         {"psnr": (30.0, "1"), "ssim": (0.9, "1"), "invented_contradicting": (TINY, "1")})
    _run(store, "vae-2", 14, "vae", "default", DEFAULT_A,
         {"psnr": (29.0, "1"), "ssim": (0.88, "2"), "invented_contradicting": (5.3e-7, "1")})
    key, trusted = make_reviewer(root, "ana")
    record_signoff(store, "vae-1", "ana", "approve", "first release", key=key, trusted=trusted, override=True)
    return store, trusted


def _figure(store: Store, selection: Selection, trusted: Path | None = None) -> tuple[dict[str, Any], str]:
    fig, note = charts.trends_figure(load(store, selection, trusted=trusted))
    return ({} if fig is None else fig.to_plotly_json()), note


def _panel(fig: dict[str, Any], metric: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces (bands first) and y-axis of ``metric``'s subplot (its title starts with the metric's name)."""
    titles = [a["text"].split(" ")[0] for a in fig["layout"]["annotations"]]
    i = titles.index(metric)
    traces = [t for t in fig["data"] if t["xaxis"] == ("x" if i == 0 else f"x{i + 1}")]
    return traces, fig["layout"]["yaxis" if i == 0 else f"yaxis{i + 1}"]


def _line(traces: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    return next(t for t in traces if not t.get("fill") and any(f"<br>{run_id}<br>" in h for h in t["hovertext"]))


def test_a_weekly_window_draws_the_run_against_the_older_approved_run(approved_store: tuple[Store, Path]) -> None:
    """M5: one run in the window and the approved run two weeks before drew "needs two runs" for every metric."""
    store, trusted = approved_store
    fig, note = _figure(store, Selection(since=T0 + timedelta(days=10), label="weekly"), trusted)
    assert fig, note
    psnr = _line(_panel(fig, "psnr")[0], "vae-2")
    assert list(psnr["x"]) == [0, 1]  # the approved run at run # 0, the window's run at 1
    assert list(psnr["y"]) == [0.0, pytest.approx(100 / 30)]  # 29 dB against the approved 30: 3.3 % worse
    assert "<br>vae-1<br>" in psnr["hovertext"][0] and "before the window" in psnr["hovertext"][0]
    assert list(psnr["marker"]["symbol"]) == ["star", "circle"]  # marked as the approved run
    assert "approved run outside the window, drawn at run # 0: vae (vae-1, 2026-03-01)" in note
    # ssim changed version: the approved v1 value is not joined to the v2 run, so ssim alone still needs two runs
    assert "needs two runs of a decoder (not drawn): ssim;" in note
    assert "ssim" not in [a["text"].split(" ")[0] for a in fig["layout"]["annotations"]]


def test_a_band_far_wider_than_the_points_is_clipped_to_their_range(approved_store: tuple[Store, Path]) -> None:
    """L5: a 4e4 % band set the y-range and flattened every point onto 0."""
    store, trusted = approved_store
    fig, note = _figure(store, Selection(), trusted)
    traces, yaxis = _panel(fig, "invented_contradicting")
    ys = list(_line(traces, "vae-2")["y"])
    assert ys == [0.0, pytest.approx(100 * (5.3e-7 - TINY) / TINY)]  # 8.2 % worse
    lo, hi = yaxis["range"]
    assert lo < 0 and ys[1] < hi < 1.2 * ys[1]  # set by the points (padded), not by the band
    band = next(t for t in traces if t.get("fill"))
    assert max(band["y"]) == pytest.approx(hi) and "clipped" in band["hovertext"]
    assert "clipped to the panel" in note and "invented_contradicting (vae: 4.08e+04%)" in note
    # psnr's 1 % band is within 10x its points' span (3.3 %): drawn whole, inside the range
    traces, yaxis = _panel(fig, "psnr")
    assert max(next(t for t in traces if t.get("fill"))["y"]) == pytest.approx(1.0)
    assert yaxis["range"][0] < 0 and yaxis["range"][1] > 100 / 30


def test_a_run_without_the_metric_is_a_gap_in_its_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """L1: a run without ssim (not measured, non-finite or failed) was left out of x, so the line bridged it."""
    store = Store(tmp_path / "qa.duckdb")
    ssim = {"g-1": 0.80, "g-3": 0.82, "g-4": float("inf"), "g-6": 0.84}
    for day, run_id in enumerate(["g-1", "g-2", "g-3", "h-1", "g-4", "g-5", "g-6"]):
        values = {"psnr": (30.0, "1")} | ({"ssim": (ssim[run_id], "1")} if run_id in ssim else {})
        _run(store, run_id, day, "vae", "half" if run_id == "h-1" else "default", HALF if run_id == "h-1" else DEFAULT_A,
             values)
    with store.transaction() as con:  # g-5: ssim failed
        con.execute("insert into set_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ["g-5", "ssim", None, None, None, 0, "failed", "boom", "1"])
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    fig, _ = _figure(store, Selection())
    line = _line(_panel(fig, "ssim")[0], "g-1")
    # run #4 (h-1) is on other images: another line, no gap here; #2 not measured, #5 inf, #6 failed: gaps
    assert list(line["x"]) == [1, 2, 3, 5, 6, 7]
    assert list(line["y"]) == [0.0, None, pytest.approx(-2.5), None, None, pytest.approx(-5.0)]
    assert line["connectgaps"] is False
    assert "no finite ssim value" in line["hovertext"][1]
    psnr = _line(_panel(fig, "psnr")[0], "g-1")
    assert list(psnr["x"]) == [1, 2, 3, 5, 6, 7] and None not in list(psnr["y"])
