"""The generate decoders through the real run engine (RunEngine + DuckDB store), offline, on a tiny zoo."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.decoders.catalog import DECODERS
from qa.decoders.l2p import LDMPiDDecoder, make_l2p
from qa.engine.run import RunConfig, RunEngine
from qa.store import Store
from tests.helpers import make_refset


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
    metrics = ["psnr", "agreement_psnr", "agreement_ssim", "latent_consistency", "seed_alignment"]
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
        assert got[(case, -1, "seed_alignment")][0] == "ok", got[(case, -1, "seed_alignment")]
    (status,) = store.query("SELECT status FROM runs WHERE run_id = ?", [run_id])[0]
    assert status == "finished"
    # the report shows, next to each output, the source image it was compared with (first seed)
    kinds = store.query("SELECT case_id, seed, kind FROM images WHERE run_id = ? AND kind = 'baseline'", [run_id])
    assert sorted(kinds) == [("tile00", 0, "baseline"), ("tile01", 0, "baseline")]
    from qa.report.build import write_report

    html = write_report(store, tmp_path / "r.html").read_text()
    assert html.count("same prompt and seed</figcaption>") == 2 and f"<b>source</b> of tiny-{kind}" in html


def test_set_realism_compares_generated_images_with_the_reference_set(tiny_zoo: dict, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """FID/KID on the generate track: no pixel-aligned reference, but the reference set is the real distribution."""
    import torch

    from qa.metrics.catalog import METRICS
    from qa.metrics.functional.inception import random_state_dict
    from qa.metrics.realism import KID

    weights = tmp_path / "random_inception.pth"
    torch.save(random_state_dict(seed=0), weights)  # seeded random backbone: the plumbing, not the values
    seen: list[KID] = []

    def kid(store: Store | None = None) -> KID:
        seen.append(KID(weights_path=weights, subsets=3, subset_size=3, store=store))
        return seen[-1]

    monkeypatch.setitem(METRICS._targets, "tiny-kid", kid)
    monkeypatch.setitem(DECODERS._targets, "tiny-l2p",
                        lambda name=None, device="cpu": make_l2p(name=name, device=device, **tiny_zoo["settings"]))
    refset = make_refset(tmp_path / "refset", n=4, side=64)
    store = Store(tmp_path / "qa.duckdb")
    run_id = RunEngine(store).start(RunConfig(decoder="tiny-l2p", reference_set=str(refset), seeds=[0, 1],
                                              metrics=["tiny-kid"], progress=False))
    rows = store.query("SELECT status, value, detail FROM set_results WHERE run_id = ? AND metric = 'kid'",
                       [run_id])
    assert rows and rows[0][0] == "ok", rows
    assert seen[-1].n_references == 4 and seen[-1].n_candidates == 8  # 4 reference images, 4 prompts x 2 seeds
