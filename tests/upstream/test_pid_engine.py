"""Contract: a PiD that cannot load gives error rows naming the file; the run finishes (``QA_PID_REPO``)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.store import Store
from tests.helpers import make_refset
from tests.upstream.conftest import PidParts

pytestmark = pytest.mark.upstream


def _register(name: str, parts: PidParts, **kw: object) -> None:
    from qa.decoders.catalog import DECODERS
    from qa.decoders.pid import make_pid
    from tests.upstream.tiny_pid import NET_OVERRIDES

    settings: dict[str, object] = dict(backend="upstream", repo=parts.repo, checkpoint=parts.checkpoint,
                                       vae_path=parts.vae, text_encoder_path=parts.text_encoder,
                                       experiment_opts=NET_OVERRIDES)
    settings.update(kw)
    if name not in DECODERS:
        DECODERS.register(name, functools.partial(make_pid, **settings))


def _rows(store: Store, run_id: str) -> list[tuple[str, str, str]]:
    return store.query("select case_id, status, detail from results where run_id = ? and metric = 'psnr'", [run_id])


def test_unloadable_pid_gives_error_rows_and_the_run_finishes(pid_parts: PidParts, cpu_for_cuda, tmp_path: Path):
    refset = make_refset(tmp_path / "set", n=2, side=64)
    store = Store(tmp_path / "qa.duckdb")
    engine = RunEngine(store)
    # 1. a .safetensors checkpoint (present, so the run starts; loading refuses it)
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"x")
    _register("pid-contract-safetensors", pid_parts, checkpoint=bad)
    # 2./3. the VAE file and the text encoder vanish after the run was created
    vae, te = tmp_path / "ae.safetensors", tmp_path / "gemma"
    shutil.copy(pid_parts.vae, vae)
    shutil.copytree(pid_parts.text_encoder, te)
    _register("pid-contract-vae", pid_parts, vae_path=vae)
    _register("pid-contract-te", pid_parts, text_encoder_path=te)
    for name, gone, phrase in (("pid-contract-safetensors", None, "model.safetensors: PiD loads a .pth file"),
                               ("pid-contract-vae", vae, f"{vae}: VAE file not found"),
                               ("pid-contract-te", te, f"{te}: no text encoder there")):
        run = engine.create_run(RunConfig(decoder=name, reference_set=str(refset), metrics=["psnr"], seeds=[0],
                                          progress=False))
        if gone is not None:
            gone.rename(gone.with_name(gone.name + ".moved"))
        engine.run_prepared(run)
        rows = _rows(store, run.run_id)
        assert len(rows) == 2 and all(s == "error" and phrase in d for _, s, d in rows), rows
        assert store.query("select status from runs where run_id = ?", [run.run_id])[0][0] == "finished"


def test_a_case_without_a_caption_is_that_cases_error_and_the_run_finishes(pid_parts: PidParts, cpu_for_cuda,
                                                                           tmp_path: Path):
    """PiD is caption-conditioned: the uncaptioned case gets an error row saying so (and how to add captions);
    the captioned cases of the same run decode. With allow_empty_caption = true it decodes too."""
    import csv

    from qa.refset.manifest import write_manifest

    refset = make_refset(tmp_path / "set", n=3, side=64)
    with (refset / "manifest.csv").open(newline="") as f:
        items = list(csv.DictReader(f))
    items[1]["caption"] = ""
    write_manifest(refset, items)
    store = Store(tmp_path / "qa.duckdb")
    engine = RunEngine(store)
    _register("pid-contract-captions", pid_parts)
    _register("pid-contract-captions-allowed", pid_parts, allow_empty_caption=True)
    for name, errors in (("pid-contract-captions", {"tile01"}), ("pid-contract-captions-allowed", set())):
        run = engine.create_run(RunConfig(decoder=name, reference_set=str(refset), metrics=["psnr"], seeds=[0],
                                          progress=False))
        engine.run_prepared(run)
        rows = {c: (s, d) for c, s, d in _rows(store, run.run_id)}
        assert {c for c, (s, _) in rows.items() if s == "error"} == errors, rows
        if errors:
            assert "has no caption" in rows["tile01"][1] and "'caption' column" in rows["tile01"][1]
        assert store.query("select status from runs where run_id = ?", [run.run_id])[0][0] == "finished"
