"""The generate decoders through the real run engine (RunEngine + DuckDB store), offline, on a tiny zoo."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.generate.decoders import LDMPiDDecoder, make_l2p
from qa.registries import DECODERS
from qa.store import Store
from tests.foundation.helpers import make_refset


@pytest.mark.parametrize("kind", ["l2p", "ldm+pid"])
def test_run_engine_stores_per_prompt_per_seed_results(tiny_zoo: dict, tmp_path: Path, kind: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dict(tiny_zoo["settings"], steps=2)

    def factory(name: str | None = None, device: str = "cpu") -> object:
        if kind == "l2p":
            return make_l2p(name=name, device=device, **settings)
        return LDMPiDDecoder(name=name, device=device, pid_steps=1, **settings)

    monkeypatch.setitem(DECODERS._targets, f"tiny-{kind}", factory)  # a test-only registration
    refset = make_refset(tmp_path / "refset", n=2, side=64)
    store = Store(tmp_path / "qa.duckdb")
    metrics = ["psnr", "agreement_psnr", "agreement_ssim", "latent_consistency"]
    run_id = RunEngine(store).start(RunConfig(decoder=f"tiny-{kind}", reference_set=str(refset), seeds=[0, 1],
                                              metrics=metrics, progress=False))
    rows = store.query("SELECT case_id, seed, metric, status, detail FROM results WHERE run_id = ? AND metric <> 'case'",
                       [run_id])
    got = {(c, s, m): (st, d) for c, s, m, st, d in rows}
    for case in ("tile00", "tile01"):
        for seed in (0, 1):
            assert got[(case, seed, "psnr")][0] == "missing"
            assert "no pixel-aligned reference" in got[(case, seed, "psnr")][1]
            for m in ("agreement_psnr", "agreement_ssim", "latent_consistency"):
                assert got[(case, seed, m)][0] == "ok", (case, seed, m, got[(case, seed, m)])
    (status,) = store.query("SELECT status FROM runs WHERE run_id = ?", [run_id])[0]
    assert status == "finished"
