"""TAEF2 with its released weights, found through the weights store (``.ci/run`` imports them from
``../shared/weights/taef2`` when that folder exists): the round-trip PSNR that an independent implementation
measured, the latent-to-4x pipeline ``taef2+esrgan`` against bicubic, both release suites, and the report's
invented-detail maps. Everything skips with the reason where the weights are not in the store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

import qa.weights as W
from qa.engine.run import RunConfig, RunEngine
from qa.store import Store

_MISSING = W.unavailable_reason(("taef2-encoder", "taef2-decoder"))
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"TAEF2 weights not in the weights store: {_MISSING}")

REPO = Path(__file__).resolve().parents[2]
#: encode then decode on reference_sets/default, fp32, 8-bit output (../shared/weights/taef2/README.md)
PUBLISHED_PSNR = 29.72
#: the metrics of the runs below: the release policies' and those of the side-by-side table in docs/hallucination.md
METRICS = ["psnr", "ssim", "ms_ssim", "lpips_alex", "fid", "invented_detail", "lost_detail", "latent_consistency",
           "hf_energy_ratio"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, str]]:
    """One run each of taef2, taef2+esrgan and bicubic on reference_sets/default (one seed: deterministic)."""
    store = Store(tmp_path_factory.mktemp("taef2") / "qa.duckdb")
    engine = RunEngine(store)
    ids = {name: engine.start(RunConfig(decoder=name, seeds=[0], metrics=METRICS, progress=False))
           for name in ("taef2", "taef2+esrgan", "bicubic")}
    return store, ids


def _values(store: Store, run_id: str, metric: str) -> dict[str, float]:
    rows = store.query("select case_id, value from results where run_id = ? and metric = ? and status = 'ok'",
                       [run_id, metric])
    return {str(c): float(v) for c, v in rows}  # type: ignore[arg-type]


def test_taef2_round_trip_psnr_is_the_independently_measured_one(runs):
    store, ids = runs
    psnr = _values(store, ids["taef2"], "psnr")
    assert len(psnr) == 32
    assert abs(np.mean(list(psnr.values())) - PUBLISHED_PSNR) <= 0.1, np.mean(list(psnr.values()))
    assert abs(min(psnr.values()) - 21.02) <= 0.1 and abs(max(psnr.values()) - 36.56) <= 0.1


def test_taef2_esrgan_invents_more_than_bicubic_and_reports_latent_consistency(runs):
    store, ids = runs
    ours, bicubic = _values(store, ids["taef2+esrgan"], "invented_detail"), _values(store, ids["bicubic"],
                                                                                     "invented_detail")
    assert len(ours) == len(bicubic) == 32
    above = sum(ours[c] > bicubic[c] for c in ours)
    assert above >= 0.9 * len(ours), f"{above}/{len(ours)} tiles above bicubic"
    lc = _values(store, ids["taef2+esrgan"], "latent_consistency")
    assert len(lc) == 32 and all(np.isfinite(v) and v >= 0 for v in lc.values())
    assert len(_values(store, ids["taef2"], "latent_consistency")) == 32


def _suite(decoder: str, db: Path, junit: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", f"--decoder={decoder}", f"--db={db}", "--seeds=1", "-q", "-rfs",
         "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("decoder", ["taef2", "taef2+esrgan"])
def test_release_suites_run_their_track_policy_without_errors(runs, decoder, tmp_path):
    """``pytest suites/ --decoder=...``: the track's tests pass or fail with a reason, the others skip; no
    test errors (a crash in a fixture or a decoder would show as an error). ``--seeds=1`` and the same store let
    the suites reuse the runs above (same decoder, weights, seeds and a superset of the policy's metrics)."""
    store, _ = runs
    junit = tmp_path / "junit.xml"
    code, out = _suite(decoder, store.path, junit)
    assert code in (0, 1), out[-3000:]
    summary = out.strip().splitlines()[-1]
    assert "error" not in summary, out[-3000:]
    assert re.search(r"\d+ passed", summary), summary
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    failures = [f for case in cases for f in case.findall("failure")]
    assert all((f.get("message") or "").strip() for f in failures)  # every failure carries its reason


def test_report_shows_taef2_maps_beside_the_other_decoders(runs, tmp_path):
    from qa.report.build import write_report

    store, ids = runs
    html = Path(write_report(store, out=tmp_path / "report.html")).read_text()
    for name in ("taef2", "taef2+esrgan", "bicubic"):
        assert f'aria-label="{name} map:invented_detail"' in html, name
