"""Issue 27, problem 4: a decoder baseline that fits the candidate and always applies, on a 6-tile set.

``baseline_decoder = "plain"`` compares each image's metric with the same metric of the candidate's own plain
decode in the same run (``baseline_psnr``): bicubic at the candidate's factor for a pixel upsampler, the plain
decode of the same latent for a latent decoder. The verdict does not depend on which other runs are stored; a
rule that cannot apply says so once, in short; a metric whose weights are absent says why once, not per image.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from qa.averaging import mean_of
from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import parse_policy
from qa.store import Store
from tests.gate.helpers import register
from tests.helpers import make_refset

METRICS = ["psnr", "ssim", "baseline_psnr", "baseline_ssim", "needs_weights"]


def _policy(baseline_decoder: str) -> dict[str, object]:
    return {"policy": {"track": "upscale", "baseline_decoder": baseline_decoder, "n_boot": 500},
            "metrics": {"psnr": {"min": 10.0, "decoder_margin": 0.3}, "ssim": {"min": 0.1, "decoder_margin": 0.01},
                        "needs_weights": {"required": False, "min": 0.0}}}


PLAIN = parse_policy(_policy("plain"), "plain.toml")


class NoPlainDecode(BicubicDecoder):
    """Bicubic x4 without a plain decode (``baseline`` None), like a decoder family that has none."""

    family = "no-plain"

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        return None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A store with one run of blurry-bicubic (x4 bicubic + blur; its plain decode is bicubic x4) and one of
    no-plain; copied per test, so unrelated runs can be added to one copy."""
    register()
    if "no-plain" not in DECODERS:
        DECODERS.register("no-plain", NoPlainDecode)
    root = tmp_path_factory.mktemp("plain")
    refset = make_refset(root / "set")
    store = Store(root / "qa.duckdb")
    runs = {name: RunEngine(store).start(RunConfig(decoder=name, reference_set=str(refset), metrics=METRICS,
                                                   seeds=[0], progress=False))
            for name in ("blurry-bicubic", "no-plain")}
    return {"root": root, "refset": refset, "runs": runs}


@pytest.fixture
def store(world: dict[str, object], tmp_path: Path) -> Store:
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):
        if (Path(str(world["root"])) / name).exists():
            shutil.copy(Path(str(world["root"])) / name, tmp_path / name)
    return Store(tmp_path / "qa.duckdb")


def _checks(outcome) -> dict[tuple[str, str, str], tuple[str, str]]:  # noqa: ANN001
    """(metric, kind, baseline kind) -> (verdict, message with run ids taken out)."""
    return {(r.metric, r.kind, r.baseline_kind): (r.verdict, re.sub(r"\S+-\d{8}-\d{6}-\w+", "RUN", r.message))
            for r in outcome.results}


def test_plain_baseline_is_the_candidates_own_plain_decode(world, store) -> None:  # noqa: ANN001
    """blurry's plain decode is bicubic x4 of the same input: its baseline_psnr values are what a bicubic x4 run
    scores, and the blur fails the decoder check against it (no other run needed)."""
    out = gate_run(store, world["runs"]["blurry-bicubic"], PLAIN, baseline="none")
    psnr = next(r for r in out.results if r.metric == "psnr" and r.baseline_kind == "decoder:plain")
    assert psnr.verdict == "fail" and "vs its plain decode (baseline_psnr)" in psnr.message
    assert psnr.worse_by is not None and psnr.worse_by > 0.3
    bicubic = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(world["refset"]),
                                               metrics=["psnr"], seeds=[0], progress=False))
    plain = dict(store.query("select case_id, value from results where run_id = ? and metric = 'baseline_psnr'",
                             [world["runs"]["blurry-bicubic"]]))
    direct = dict(store.query("select case_id, value from results where run_id = ? and metric = 'psnr'", [bicubic]))
    assert plain.keys() == direct.keys() and all(plain[k] == pytest.approx(direct[k], abs=1e-9) for k in plain)
    assert psnr.baseline_mean == pytest.approx(mean_of(direct.values(), "noise_power"))  # PSNR's averaging


def test_plain_baseline_fits_any_factor(world, store) -> None:  # noqa: ANN001
    """bicubic --set factor=2 (x2, where the old rule compared with x4 bicubic and skipped): its plain decode is
    itself, so the decoder check applies and passes at worse by 0."""
    run = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=METRICS,
                                           seeds=[0], progress=False, settings={"factor": 2}))
    out = gate_run(store, run, PLAIN, baseline="none")
    got = {r.metric: r for r in out.results if r.baseline_kind == "decoder:plain"}
    assert got["psnr"].verdict == "pass" and got["psnr"].worse_by == 0.0 and got["ssim"].verdict == "pass"


def test_same_verdict_whether_or_not_unrelated_runs_exist(world, store) -> None:  # noqa: ANN001
    run = world["runs"]["blurry-bicubic"]
    before = gate_run(store, run, PLAIN, baseline="none")
    for factor in (4, 2):  # bicubic runs of both factors: what the old rule looked up
        RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=METRICS,
                                         seeds=[0], progress=False, settings={"factor": factor}))
    after = gate_run(store, run, PLAIN, baseline="none")
    assert before.verdict == after.verdict == "fail"
    assert _checks(before) == _checks(after)


def test_a_rule_that_cannot_apply_says_so_once_and_short(world, store) -> None:  # noqa: ANN001
    # the candidate has no plain decode: every decoder check skips with one short reason
    out = gate_run(store, world["runs"]["no-plain"], PLAIN, baseline="none")
    skipped = [r for r in out.results if r.baseline_kind == "decoder:plain"]
    assert {r.verdict for r in skipped} == {"skipped"} and len({r.message for r in skipped}) == 1
    assert skipped[0].message == "baseline decoder:plain does not apply: no-plain has no plain decode"
    text = "\n".join(out.lines())
    assert text.count("has no plain decode") == 1 and "ssim vs decoder:plain: as above" in text
    # a named decoder baseline of another factor (x4 bicubic for an x2 candidate): said once, on the baseline line
    RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=["psnr"],
                                     seeds=[0], progress=False))
    run2 = RunEngine(store).start(RunConfig(decoder="bicubic-twin", reference_set=str(world["refset"]),
                                            metrics=METRICS, seeds=[0], progress=False, settings={"factor": 2}))
    out = gate_run(store, run2, parse_policy(_policy("bicubic"), "named.toml"), baseline="none")
    text = "\n".join(out.lines())
    assert text.count("upscales x4 and 'bicubic-twin' x2") == 1, text
    assert {r.message for r in out.results if r.baseline_kind == "decoder:bicubic"} == {
        "baseline decoder:bicubic does not apply: " + out.baselines[-1].inapplicable}


def test_missing_weights_say_why_once_not_per_image(world, store) -> None:  # noqa: ANN001
    out = gate_run(store, world["runs"]["blurry-bicubic"], PLAIN, baseline="none")
    nw = next(r for r in out.results if r.metric == "needs_weights")
    assert nw.verdict == "skipped" and "6 of 6 cases have no needs_weights value" in nw.message
    assert nw.message.count("qa weights fetch fake-net") == 1 and "(every case)" in nw.message
    assert len(nw.message) < 250, nw.message
