"""The report's trend lines: one line per (metric, decoder, reference set content, metric version).

Runs on other images (another set, or other content under the same set name) or under another definition of a
metric (its version) are not comparable: joined into one line they would read as a regression no decoder made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qa.gate.signing import TRUSTED_ENV
from qa.report import charts
from qa.report.data import Selection, load
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.records import NewRun, SetResult

T0 = datetime(2026, 3, 1, 9, 0, 0)
DEFAULT_A, DEFAULT_B, HALF = "a" * 64, "b" * 64, "c" * 64


def _run(store: Store, run_id: str, day: int, decoder: str, refset: str, sha: str,
         values: dict[str, tuple[float, str]]) -> None:
    """A finished run of ``decoder`` on ``refset`` (content ``sha``) with set results metric -> (value, version)."""
    store_runs.insert_run(store, NewRun(
        run_id=run_id, started_at=T0 + timedelta(days=day), suite="t", decoder=decoder, family="simple",
        backend="numpy", track="upscale", weights_sha256="", encoder_sha256="e" * 64, reference_set=refset,
        reference_set_sha256=sha, seeds=[0], qa_version="0.1.0", git_commit="abc", device="cpu",
        config={"decoder": decoder}, identity_sha256=run_id.ljust(64, "0"), n_shards=1, n_cases=4, scale=2), [])
    store_results.finish_run(store, run_id, [SetResult(run_id, m, v, v - 0.1, v + 0.1, 4, "ok", "", ver)
                                             for m, (v, ver) in values.items()])


@pytest.fixture(scope="module")
def trends(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], str]:
    """The trend traces (without the shaded bands) and note of a store where vae runs on default, then half,
    then default, then on other content of default, and bicubic's psnr changes version 1 -> 2 -> 1."""
    store = Store(tmp_path_factory.mktemp("trend_lines") / "qa.duckdb")
    _run(store, "vae-1", 0, "vae", "default", DEFAULT_A, {"psnr": (30.0, "1")})
    _run(store, "vae-2", 1, "vae", "half", HALF, {"psnr": (20.0, "1")})
    _run(store, "vae-3", 2, "vae", "default", DEFAULT_A, {"psnr": (30.2, "1")})
    _run(store, "vae-4", 3, "vae", "default", DEFAULT_B, {"psnr": (25.0, "1")})
    _run(store, "bic-1", 0, "bicubic", "default", DEFAULT_A, {"psnr": (28.0, "1"), "ssim": (0.8, "1")})
    _run(store, "bic-2", 1, "bicubic", "default", DEFAULT_A, {"psnr": (14.0, "2"), "ssim": (0.81, "1")})
    _run(store, "bic-3", 2, "bicubic", "default", DEFAULT_A, {"psnr": (28.1, "1"), "ssim": (0.82, "1")})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(TRUSTED_ENV, raising=False)  # no trusted keys: no approved run, every line on its first run
        data = load(store, Selection())
    fig, note = charts.trends_figure(data)
    assert fig is not None
    return [t.to_plotly_json() for t in fig.data if not t.fill], note


def _runs(trace: dict[str, Any]) -> list[str]:
    return [h.split("<br>")[1] for h in trace["hovertext"]]


def _psnr_lines(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in traces if t["xaxis"] == "x"]  # psnr is the first subplot (metrics in name order)


def test_set_results_of_reads_the_metric_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    _run(store, "r1", 0, "vae", "default", DEFAULT_A, {"psnr": (30.0, "2")})
    assert store_results.set_results_of(store, ["r1"])["r1"]["psnr"].metric_version == "2"


def test_runs_on_other_reference_sets_or_content_never_share_a_line(trends: tuple[list[dict[str, Any]], str]) -> None:
    vae = {tuple(_runs(t)) for t in _psnr_lines(trends[0]) if _runs(t)[0].startswith("vae")}
    assert vae == {("vae-1", "vae-3"), ("vae-2",), ("vae-4",)}


def test_a_metric_version_change_is_a_line_of_its_own(trends: tuple[list[dict[str, Any]], str]) -> None:
    bicubic = {tuple(_runs(t)) for t in _psnr_lines(trends[0]) if _runs(t)[0].startswith("bic")}
    assert bicubic == {("bic-1", "bic-3"), ("bic-2",)}
    ssim = [_runs(t) for t in trends[0] if t["xaxis"] == "x2" and _runs(t)[0].startswith("bic")]
    assert ssim == [["bic-1", "bic-2", "bic-3"]]  # ssim kept its version: one line


def test_split_lines_are_named_by_set_and_version(trends: tuple[list[dict[str, Any]], str]) -> None:
    names = {tuple(_runs(t)): t["name"] for t in _psnr_lines(trends[0])}
    assert names[("vae-2",)] == f"vae · set half {HALF[:8]}"
    assert names[("vae-4",)] == f"vae · set default {DEFAULT_B[:8]}"
    assert names[("bic-2",)] == "bicubic · psnr v2" and names[("bic-1", "bic-3")] == "bicubic · psnr v1"
    dashes = {tuple(_runs(t)): t["line"]["dash"] for t in _psnr_lines(trends[0])}
    assert dashes[("vae-1", "vae-3")] == "solid" and dashes[("vae-2",)] != "solid"
    hover = next(t for t in _psnr_lines(trends[0]) if _runs(t) == ["bic-2"])["hovertext"][0]
    assert f"set default ({DEFAULT_A[:12]})" in hover and "psnr v2 = " in hover


def test_the_note_says_lines_were_split_and_why(trends: tuple[list[dict[str, Any]], str]) -> None:
    note = trends[1]
    assert "lines split" in note
    assert "vae (reference set content)" in note and "bicubic (psnr version)" in note


def test_each_line_is_drawn_against_its_own_first_run(trends: tuple[list[dict[str, Any]], str]) -> None:
    ys = {tuple(_runs(t)): t["y"] for t in _psnr_lines(trends[0])}
    assert list(ys[("vae-2",)]) == [0.0] and list(ys[("bic-2",)]) == [0.0]  # no -33 % "regression" from the set
    assert list(ys[("vae-1", "vae-3")])[0] == 0.0


def test_the_hover_names_each_decision_in_words(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Report audit L2: a rejected run's hover read "rejectd"."""
    store = Store(tmp_path / "qa.duckdb")
    _run(store, "vae-1", 0, "vae", "default", DEFAULT_A, {"psnr": (30.0, "1")})
    _run(store, "vae-2", 1, "vae", "default", DEFAULT_A, {"psnr": (29.0, "1")})
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    data = load(store, Selection())
    monkeypatch.setattr(charts, "_decisions", lambda _data: {"vae-1": "approve", "vae-2": "reject"})
    fig, _ = charts.trends_figure(data)
    hovers = [h for t in fig.data if not t.fill for h in t.hovertext]  # type: ignore[union-attr]
    assert any(h.endswith("<br>approved") for h in hovers) and any(h.endswith("<br>rejected") for h in hovers)
