"""The engine checks what a decoder declares: one declared deterministic whose seeds decode the same input
differently fails its cases (and so the gate) with the reason; float noise far under half an 8-bit level, and the
same decoder declared stochastic, do not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch, Decoder
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.decoder_contract import DETERMINISM_TOLERANCE, unreproduced
from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import parse_policy
from qa.store import Store
from qa.store import results as store_results
from tests.helpers import make_refset, seeded_noise


class SeedNoiseBicubic(BicubicDecoder):
    """Bicubic x4 plus Gaussian noise of ``noise`` std, seeded per seed and case: dropout left on, as far as a caller
    can tell."""

    family = "seed-noise-bicubic"

    def __init__(self, name: str | None = None, device: str = "cpu", noise: float = 0.02,
                 **settings: object) -> None:
        super().__init__(name, device, noise=float(noise), **settings)
        self.noise = float(noise)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + self.noise * seeded_noise(out, batch.case_ids, seed)).clamp(0, 1)  # per case


class StochasticSeedNoiseBicubic(SeedNoiseBicubic):
    family = "stochastic-seed-noise-bicubic"
    stochastic = True


POLICY = parse_policy({"policy": {"track": "upscale", "n_boot": 200}, "metrics": {"psnr": {"min": 10.0}}})


def _register() -> None:
    for cls in (SeedNoiseBicubic, StochasticSeedNoiseBicubic):
        if cls.family not in DECODERS:
            DECODERS.register(cls.family, cls)


def _run(tmp_path: Path, decoder: Decoder) -> tuple[Store, str]:
    _register()
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder=decoder.name, reference_set=str(make_refset(tmp_path / "set", n=3)),
                    metrics=["psnr", "seed_variance"], seeds=[0, 1], progress=False)
    return store, RunEngine(store).start(cfg, decoder)


def test_a_deterministic_decoder_whose_seeds_differ_fails_every_case_and_the_gate(tmp_path: Path) -> None:
    store, run = _run(tmp_path, SeedNoiseBicubic(name="seed-noise-bicubic", noise=0.02))
    rows = store_results.metric_rows(store, run, "psnr")
    assert rows and all(r.status == "error" for r in rows)
    assert "declared deterministic, but seed 1 decoded the same input differently from seed 0" in rows[0].detail
    assert "declare it stochastic" in rows[0].detail
    result = gate_run(store, run, POLICY, "none")
    cases = next(r for r in result.results if r.kind == "cases")
    assert result.verdict == "fail" and cases.verdict == "fail" and "3 of 3 cases failed" in cases.message


def test_float_noise_under_half_a_level_and_a_declared_stochastic_decoder_pass(tmp_path: Path) -> None:
    store, run = _run(tmp_path / "a", SeedNoiseBicubic(name="seed-noise-bicubic", noise=1e-6))
    assert all(r.status == "ok" for r in store_results.metric_rows(store, run, "psnr"))
    store, run = _run(tmp_path / "b", StochasticSeedNoiseBicubic(name="stochastic-seed-noise-bicubic", noise=0.02))
    assert all(r.status == "ok" for r in store_results.metric_rows(store, run, "psnr"))
    variance = [r.value for r in store_results.metric_rows(store, run, "seed_variance")]
    assert variance and all(v is not None and v > 0.005 for v in variance)


@pytest.mark.parametrize(("gap", "fails"), [(0.99 * DETERMINISM_TOLERANCE, False), (1.01 * DETERMINISM_TOLERANCE, True),
                                            (None, False)])
def test_the_tolerance_is_one_8_bit_level_rms(gap: float | None, fails: bool) -> None:
    first = torch.full((2, 3, 8, 8), 0.5, dtype=torch.float64)
    out = first.clone()
    if gap is None:  # one pixel a bfloat16 rounding step (1/256) apart: no finding
        out[1, 2, 3, 4] += 1 / 256
    else:  # every pixel ``gap`` apart: the RMS is ``gap``
        out[1] += gap
    dec = BicubicDecoder(name="bicubic")
    assert set(unreproduced(dec, out, first, ["a", "b"], seed=1, first=0)) == ({"b"} if fails else set())
    dec.stochastic = True
    assert unreproduced(dec, out, first, ["a", "b"], seed=1, first=0) == {}


class BatchNoiseBicubic(StochasticSeedNoiseBicubic):
    """Seeded noise drawn once for the whole batch: a case's noise depends on its place in the batch."""

    family = "batch-noise-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = BicubicDecoder.decode(self, batch, seed)
        g = torch.Generator().manual_seed(1000 + seed)
        return (out + self.noise * torch.randn(out.shape, generator=g, dtype=out.dtype)).clamp(0, 1)


class BatchNormBicubic(BicubicDecoder):
    """Bicubic x4 brightened by the batch's mean brightness: normalisation over the batch (train-mode BatchNorm)."""

    family = "batch-norm-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return (out + 0.2 * (out.mean() - out.mean(dim=(1, 2, 3), keepdim=True))).clamp(0, 1)


def _psnr_in_batches_of_3(tmp_path: Path, cls: type) -> dict[str, tuple[str, str]]:
    """case id -> (status, detail) of psnr (seed 0) in a run of ``cls`` over 5 tiles in batches of 3."""
    if cls.family not in DECODERS:
        DECODERS.register(cls.family, cls)
    store = Store(tmp_path / "qa.duckdb")
    cfg = RunConfig(decoder=cls.family, reference_set=str(make_refset(tmp_path / "set", n=5)), metrics=["psnr"],
                    seeds=[0, 1], batch_size=3, progress=False)
    run = RunEngine(store).start(cfg, cls(name=cls.family))
    return {r.case_id: (r.status, r.detail) for r in store_results.metric_rows(store, run, "psnr") if r.seed == 0}


@pytest.mark.parametrize("cls", [BatchNoiseBicubic, BatchNormBicubic])
def test_an_output_that_depends_on_its_batch_mates_fails_that_batch(tmp_path: Path, cls: type) -> None:
    status = _psnr_in_batches_of_3(tmp_path, cls)
    failed = {c for c, (st, _) in status.items() if st == "error"}
    assert failed == {"tile00", "tile01", "tile02"}  # the first batch of 3 (one check per shard)
    assert "another output decoded alone than in a batch of 3 cases" in status["tile02"][1]
    assert "--batch-size 1" in status["tile02"][1]


def test_per_case_noise_passes_the_batch_check(tmp_path: Path) -> None:
    status = _psnr_in_batches_of_3(tmp_path, StochasticSeedNoiseBicubic)
    assert len(status) == 5 and all(st == "ok" for st, _ in status.values())


class Convention(BicubicDecoder):
    """Bicubic x4 returned in another value convention (``convention``: "signed" = [-1, 1], "uint8" = 0..255 as
    torch.uint8, "overshoot" = a VAE's ringing past white on a few pixels, "exit" = a library calling sys.exit)."""

    family = "convention-bicubic"

    def __init__(self, name: str | None = None, device: str = "cpu", convention: str = "signed",
                 **settings: object) -> None:
        super().__init__(name, device, convention=convention, **settings)
        self.convention = convention

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        if self.convention == "signed":
            return out * 2 - 1
        if self.convention == "uint8":
            return (out * 255).round().to(torch.uint8)
        if self.convention == "exit" and "1" in "".join(batch.case_ids):
            raise SystemExit(3)
        over = out.clone()
        over[..., :2, :2] = 1.08  # a few pixels a few levels past white
        return over


@pytest.mark.parametrize(("convention", "says"), [
    ("signed", "decoder returned values in [-"),
    ("uint8", "decoder returned torch.uint8 values, expected floating point in [0, 1]"),
    ("exit", "decoder failed: SystemExit: 3"),
    ("overshoot", ""),
])
def test_an_output_in_another_value_convention_fails_its_cases(tmp_path: Path, convention: str, says: str) -> None:
    """Audit 2026-12-07: a uint8 0..255 output was clipped to white and scored (invented_detail 0.0, the best
    value); [-1, 1] lost every dark value without a word; a decoder calling sys.exit() ended the whole run. Now
    each fails its cases with the reason, and the rest of the run goes on; a VAE's overshoot is clipped as
    before."""
    if Convention.family not in DECODERS:
        DECODERS.register(Convention.family, Convention)
    store, run = _run(tmp_path, Convention(name="convention-bicubic", convention=convention))
    rows = store_results.metric_rows(store, run, "psnr")
    assert len(rows) == 6  # 3 cases x 2 seeds
    failed = [r for r in rows if r.status == "error"]
    if convention == "overshoot":
        assert not failed
        return
    assert failed and all(says in r.detail for r in failed)
    if convention == "exit":  # only the cases whose id holds a "1"; the others are scored
        assert any(r.status == "ok" for r in rows)
