"""PSNR is averaged in noise power (qa.averaging) wherever qa averages it: a flat grey card decoded almost exactly no
longer lifts a set over the policy's floor, and an exact seed no longer hides the other seeds of its case."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qa.averaging import interval_of, mean_of
from qa.decoders.base import DecodeBatch
from qa.engine.run import RunConfig, RunEngine
from qa.gate.data import load_metric
from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.hashing import sha256_file
from qa.score import score_folders
from qa.store import Store
from qa.store import results as store_results
from tests.gate.helpers import TunableBicubic, _gaussian_blur, register
from tests.helpers import make_refset


class SecondSeedBlurred(TunableBicubic):
    """Plain bicubic at seed 0, blurred (sigma 2 px) and 0.05 brighter at every other seed."""

    family = "second-seed-blurred"
    stochastic = True

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return out if seed == 0 else (_gaussian_blur(out, 2.0) + 0.05).clamp(0, 1)


def _refset_with_grey_card(root: Path) -> Path:
    (root / "set").mkdir(parents=True)
    card = root / "set" / "card.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(card)
    extra = [{"id": "card", "file": card.name, "caption": "a grey card", "licence": "test", "source": "test",
              "sha256": sha256_file(card)}]
    return make_refset(root / "set", n=3, extra=extra)


def test_a_grey_card_no_longer_lifts_a_set_over_the_psnr_floor(tmp_path: Path) -> None:
    register()
    refset = _refset_with_grey_card(tmp_path)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="tunable", reference_set=str(refset), metrics=["psnr"], progress=False)
    run = RunEngine(store).start(cfg, TunableBicubic(name="tunable", blur=3.0))
    per_case = load_metric(store, run, "psnr").per_case
    photos = [v for c, v in per_case.items() if c != "card"]
    assert per_case["card"] > 60 and max(photos) < 40  # the card is decoded almost exactly, the photos are not
    floor = max(photos) + 0.5  # every photo misses it
    assert np.mean(list(per_case.values())) > floor  # ... and the arithmetic mean of dB would have cleared it
    (tmp_path / "policy.toml").write_text(f"[policy]\ntrack = \"upscale\"\nn_boot = 300\n"
                                          f"[metrics.psnr]\nmin = {floor}\nmargin = 0.3\n")
    result = gate_run(store, run, load_policy(tmp_path / "policy.toml"), "none")
    bound = next(r for r in result.results if r.metric == "psnr" and r.kind == "bounds")
    assert bound.verdict == "fail" and result.verdict == "fail", bound.message
    # the set value is the PSNR of the mean squared error: at most 10 log10(4/3) dB above the photos' own
    assert bound.candidate_mean == pytest.approx(mean_of(per_case.values(), "noise_power"), abs=1e-12)
    assert bound.candidate_mean < mean_of(photos, "noise_power") + 10 * math.log10(4 / 3) + 1e-9
    stored = store_results.set_result(store, run, "psnr")
    assert stored is not None and stored.value == pytest.approx(bound.candidate_mean, abs=1e-12)


def test_an_exact_seed_does_not_hide_a_blurred_one(tmp_path: Path) -> None:
    from qa.decoders.catalog import DECODERS

    if "second-seed-blurred" not in DECODERS:
        DECODERS.register("second-seed-blurred", SecondSeedBlurred)
    refset = _refset_with_grey_card(tmp_path)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="second-seed-blurred", reference_set=str(refset), metrics=["psnr"], progress=False)
    run = RunEngine(store).start(cfg, SecondSeedBlurred(name="second-seed-blurred"))
    rows = [r for r in store_results.metric_rows(store, run, "psnr") if r.case_id == "card"]
    by_seed = {r.seed: float(r.value) for r in rows if r.value is not None}
    assert set(by_seed) == {0, 1} and by_seed[0] > 100 > 30 > by_seed[1]  # seed 0 (almost) exact, seed 1 not
    card = load_metric(store, run, "psnr").per_case["card"]
    assert card == pytest.approx(mean_of(by_seed.values(), "noise_power"), abs=1e-12)
    assert card == pytest.approx(by_seed[1] + 10 * math.log10(2), abs=0.01)  # decided by the other seed
    per_case = load_metric(store, run, "psnr").per_case
    stored = store_results.set_result(store, run, "psnr")
    expected = interval_of([per_case[c] for c in sorted(per_case)], "noise_power")
    assert stored is not None and stored.value == pytest.approx(expected.mean, abs=1e-12)


def test_qa_score_averages_seeds_in_noise_power(tmp_path: Path) -> None:
    ref, exact, noisy = (tmp_path / d for d in ("ref", "exact", "noisy"))
    rng = np.random.default_rng(0)
    image = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    for folder, pixels in ((ref, image), (exact, image),
                           (noisy, np.clip(image.astype(int) + rng.integers(-8, 9, image.shape), 0, 255))):
        folder.mkdir()
        Image.fromarray(pixels.astype(np.uint8)).save(folder / "a.png")
    score_folders(ref, [exact, noisy], tmp_path / "out.csv", metrics=["psnr"])
    import pandas as pd

    row = pd.read_csv(tmp_path / "out.csv").set_index("metric").loc["psnr"]
    mse = np.mean(((image.astype(int) - np.asarray(Image.open(noisy / "a.png"), int)) / 255.0) ** 2)
    assert row.status == "ok" and math.isfinite(row.value)
    # the exact seed adds no noise: the PSNR of the mean of (0, mse); qa computes in float32, hence 1e-4 dB
    assert row.value == pytest.approx(-10 * math.log10(mse / 2), abs=1e-4)


def test_a_report_draws_psnr_by_the_same_rule_for_runs_stored_before_it(tmp_path: Path) -> None:
    """The report's set values of PSNR are the engine's own for a run stored under the rule (bit for bit), and the
    same rule's value for a run stored before it (which holds the arithmetic mean of its dB)."""
    from qa.report.data import reaveraged

    register()
    refset = _refset_with_grey_card(tmp_path)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder="tunable", reference_set=str(refset), metrics=["psnr", "ssim"], progress=False)
    new, old = (RunEngine(store).start(cfg, TunableBicubic(name="tunable", blur=b)) for b in (1.0, 2.0))
    stored = {r: {m: store_results.set_result(store, r, m) for m in ("psnr", "ssim")} for r in (new, old)}
    per_case = load_metric(store, old, "psnr").per_case
    with store.transaction() as con:  # what a run made before the rule stored: the arithmetic mean of dB
        con.execute("update set_results set value = ? where run_id = ? and metric = 'psnr'",
                    [float(np.mean(list(per_case.values()))), old])
    with store.snapshot() as db:
        drawn = reaveraged(db, store_results.set_results_of(db, [new, old]))
    assert drawn[new]["psnr"] == stored[new]["psnr"]  # the stored row, its metric version included
    assert drawn[old]["psnr"].value == pytest.approx(stored[old]["psnr"].value, abs=1e-12)
    assert drawn[old]["psnr"].value == pytest.approx(mean_of(per_case.values(), "noise_power"), abs=1e-12)
    assert drawn[old]["ssim"].value == stored[old]["ssim"].value  # other metrics: as stored
