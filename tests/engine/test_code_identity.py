"""A run's identity holds the hash of the code that made it (qa's source and the decoder's): a finished run made by
other code is not reused as the candidate, and an unfinished one is not resumed by it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

import qa
from qa.decoders.simple import BicubicDecoder
from qa.engine import provenance
from qa.engine.plan import EnsuredRun
from qa.engine.provenance import code_sha256, source_sha256, tree_sha256
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.store import Store
from tests.helpers import make_refset

OTHER_CODE = "f" * 64


class Stop(Exception):
    """Raised from on_shard: the run stops after its first shard (as if killed)."""


def _stop(index: int) -> None:
    raise Stop(f"planted stop after shard {index}")


def _config(refset: Path, metrics: list[str]) -> RunConfig:
    return RunConfig(decoder="bicubic", reference_set=str(refset), metrics=metrics, shard_size=1, progress=False)


def test_a_finished_run_is_reused_only_by_the_same_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suites' entry (RunEngine.ensure): same code, weights, set, seeds and settings reuse the finished run
    (also one with more metrics); another hash of qa's source or of the decoder's code runs anew."""
    refset = make_refset(tmp_path / "set", n=2)
    store = Store(tmp_path / "qa.duckdb")
    engine = RunEngine(store)
    first = engine.ensure(_config(refset, ["psnr", "ssim"]))
    assert not first.reused
    cfg = json.loads(str(store.query("select config_json from runs where run_id = ?", [first.run_id])[0][0]))
    assert cfg["code_sha256"] == code_sha256(BicubicDecoder()) != source_sha256()  # + the library versions
    assert engine.ensure(_config(refset, ["psnr", "ssim"])) == EnsuredRun(first.run_id, True)
    assert engine.ensure(_config(refset, ["psnr"])) == EnsuredRun(first.run_id, True)  # fewer metrics, same code
    with monkeypatch.context() as m:
        m.setattr(provenance, "source_sha256", lambda: OTHER_CODE)  # qa's source edited
        changed = engine.ensure(_config(refset, ["psnr"]))
        assert not changed.reused and changed.run_id != first.run_id
        assert engine.ensure(_config(refset, ["psnr"])) == EnsuredRun(changed.run_id, True)
    with monkeypatch.context() as m:
        m.setattr(provenance, "code_sha256", lambda decoder: "e" * 64)  # the decoder's file edited
        again = engine.ensure(_config(refset, ["psnr", "ssim"]))
        assert not again.reused and again.run_id not in (first.run_id, changed.run_id)
    assert engine.ensure(_config(refset, ["psnr", "ssim"])) == EnsuredRun(first.run_id, True)


def _set_config(store: Store, run_id: str, cfg: dict) -> None:
    with store.transaction() as con:
        con.execute("update runs set config_json = ? where run_id = ?", [json.dumps(cfg), run_id])


def test_resume_refuses_a_run_started_by_other_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted run is not resumed by changed code (nor is one stored before the hash was recorded); the
    same code resumes it to the end."""
    refset = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")
    with pytest.raises(Stop):
        RunEngine(store, on_shard=_stop).start(_config(refset, ["psnr"]))
    run_id = str(store.query("select run_id from runs")[0][0])
    now = code_sha256(BicubicDecoder())
    with monkeypatch.context() as m:
        m.setattr("qa.engine.provenance.source_sha256", lambda: OTHER_CODE)
        then = code_sha256(BicubicDecoder())
        with pytest.raises(QAError, match=r"cannot be resumed: qa's code or the decoder's code changed since the run "
                                          rf"started \(source sha256 {now[:12]} -> {then[:12]}\): start a new run"):
            RunEngine(store).resume(run_id, progress=False)
    cfg = json.loads(str(store.query("select config_json from runs where run_id = ?", [run_id])[0][0]))
    _set_config(store, run_id, {k: v for k, v in cfg.items() if k != "code_sha256"})
    with pytest.raises(QAError, match=rf"source sha256 not recorded -> {now[:12]}\): start a new run"):
        RunEngine(store).resume(run_id, progress=False)
    _set_config(store, run_id, cfg)
    assert store.query("select count(*) from shards where run_id = ?", [run_id])[0][0] == 1  # nothing mixed in
    RunEngine(store).resume(run_id, progress=False)
    assert store.query("select status, error from runs where run_id = ?", [run_id])[0] == ("finished", None)


def _fake_package(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "sub" / "mod.py").write_text("def f():\n    return 2\n")
    (root / "pkg" / "data.json").write_text("{}\n")
    return root / "pkg"


def test_the_source_hash_follows_file_contents_and_ignores_bytecode(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path / "a")
    base = tree_sha256(pkg)
    copy = tmp_path / "b" / "pkg"
    shutil.copytree(pkg, copy)
    assert tree_sha256(copy) == base  # content and relative paths, not where the tree lies
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (copy / "sub" / "mod.pyc").write_bytes(b"\x00stray bytecode")
    assert tree_sha256(copy) == base
    (copy / "sub" / "mod.py").write_text("def f():\n    return 3\n")  # a one-line change
    changed = tree_sha256(copy)
    assert changed != base
    (copy / "sub" / "mod.py").rename(copy / "sub" / "other.py")  # same bytes under another name
    assert tree_sha256(copy) not in (base, changed)



def test_the_source_hash_is_of_the_imported_qa_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """source_sha256 hashes the folder of the qa package this process imported (uncached here: other edits of the
    checkout while the tests run must not matter)."""
    assert provenance.qa_package_root() == Path(qa.__file__).resolve().parent
    pkg = _fake_package(tmp_path)
    monkeypatch.setattr(provenance, "qa_package_root", lambda: pkg)
    assert provenance.source_sha256.__wrapped__() == tree_sha256(pkg)


def test_a_decoder_outside_qa_adds_its_source_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """qa's own decoders are covered by qa's hash; a plugin's class file is hashed with it, so editing it counts."""
    path = tmp_path / "plugin_decoder.py"
    path.write_text("from qa.decoders.simple import BicubicDecoder\n\n\nclass Plugin(BicubicDecoder):\n"
                    "    family = 'plugin'\n")
    spec = importlib.util.spec_from_file_location("plugin_decoder_for_code_identity", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an imported plugin is
    spec.loader.exec_module(module)
    decoder = module.Plugin()
    before = code_sha256(decoder)
    assert before != code_sha256(BicubicDecoder())
    path.write_text(path.read_text() + "    # a one-line change\n")
    assert code_sha256(decoder) != before
    path.unlink()  # an unreadable source file leaves qa's hash and the libraries'
    assert code_sha256(decoder) == code_sha256(BicubicDecoder())


def test_a_plugin_packages_helper_modules_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit round 2 (N5): a plugin decoder importing a helper module of its package reused a run after the
    helper was edited. A decoder in a package is hashed with its whole top-level package."""
    pkg = tmp_path / "plugin_pkg_for_code_identity"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("GAIN = 1.0\n")
    (pkg / "models" / "decoder.py").write_text(
        "from qa.decoders.simple import BicubicDecoder\n\n\nclass Plugin(BicubicDecoder):\n    family = 'plugin'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("plugin_pkg_for_code_identity.models.decoder")
    decoder = module.Plugin()
    before = code_sha256(decoder)
    assert before != code_sha256(BicubicDecoder())
    (pkg / "helpers.py").write_text("GAIN = 1.5  # the helper the decoder imports, edited\n")
    assert code_sha256(decoder) != before
