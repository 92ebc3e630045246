"""A run that did not finish is never approved and never a baseline (resume audit H1), and a baseline that lacks
some of the candidate's images says so (the pairing is never shown whole, the worst-images rule never passes).

The world, on a 6-tile set: A (bicubic, finished) approved as the first release; P (bicubic) stopped after its
first shard of 2 tiles and marked ``interrupted``, as a Ctrl-C leaves it; C (bicubic, finished), the candidate;
F (``fails-some``: bicubic that cannot decode tile01 and tile03) finished with 2 failed cases, and G
(``fails-some`` failing none), its candidate. An approval of P
recorded by a qa that let ``--override`` pass it is planted by switching that refusal off for one call.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from qa.cli.main import main as qa_main
from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate import baseline_file, signoff
from qa.gate.baseline_file import export_baseline
from qa.gate.data import GateError
from qa.gate.evaluate import gate_run, resolve_baseline
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff, verify_chain
from qa.store import Store
from qa.store import runs as store_runs
from tests.gate.helpers import register
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

POLICY = """
[policy]
track = "upscale"
n_boot = 200
[metrics.psnr]
min = 15.0
margin = 0.3
image_margin = 0.5
"""


class Stop(Exception):
    """Raised from on_shard to stop a run after its first shard."""


class FailsOnSome(BicubicDecoder):
    """Bicubic x4 that cannot decode the cases named in its ``fail`` setting (comma-separated; one per batch)."""

    family = "fails-some"
    max_batch = 1

    def __init__(self, name: str | None = None, device: str = "cpu", factor: int = 4, fail: str = "",
                 **settings: object) -> None:
        super().__init__(name, device, factor=factor, fail=fail, **settings)
        self.fail = {c for c in fail.split(",") if c}

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        bad = [c for c in batch.case_ids if c in self.fail]
        if bad:
            raise RuntimeError(f"planted failure decoding {', '.join(bad)}")
        return super().decode(batch, seed)


def _run(store: Store, refset: Path, fail: str | None = None) -> str:
    """A finished run of bicubic, or of ``fails-some`` failing the cases in ``fail``."""
    cfg = RunConfig(decoder="bicubic" if fail is None else "fails-some", reference_set=str(refset), metrics=["psnr"],
                    progress=False)
    return RunEngine(store).start(cfg, None if fail is None else FailsOnSome(name="fails-some", fail=fail))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    register()
    from qa.decoders.catalog import DECODERS

    if "fails-some" not in DECODERS:
        DECODERS.register("fails-some", FailsOnSome)
    root = tmp_path_factory.mktemp("partial")
    refset = make_refset(root / "set")
    (root / "policy.toml").write_text(POLICY)
    keys = root / "keys"
    keys.mkdir()
    ana, trusted = make_reviewer(keys, "ana")
    store = Store(root / "qa.duckdb")
    runs = {"A": _run(store, refset)}

    def stop(index: int) -> None:
        raise Stop("planted stop after shard 0")

    with pytest.raises(Stop):
        RunEngine(store, on_shard=stop).start(RunConfig(decoder="bicubic", reference_set=str(refset),
                                                        metrics=["psnr"], shard_size=2, progress=False))
    runs["P"] = str(store.query("select run_id from runs where status != 'finished'")[0][0])
    store_runs.set_stopped(store, runs["P"], "interrupted", "KeyboardInterrupt")
    runs["C"] = _run(store, refset)
    runs["F"] = _run(store, refset, "tile01,tile03")
    runs["G"] = _run(store, refset, "")
    policy = root / "policy.toml"
    assert gate_run(store, runs["A"], load_policy(policy), "none", trusted=trusted).verdict == "pass"
    record_signoff(store, runs["A"], "ana", "approve", "first release", key=ana, trusted=trusted, policy=policy)
    return {"root": root, "runs": runs, "ana": ana, "trusted": trusted, "policy": policy}


@pytest.fixture
def w(world: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A private copy of the world's store; ana's key and the trusted file as the defaults."""
    root = Path(str(world["root"]))
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):
        shutil.copy(root / name, tmp_path / name)
    monkeypatch.setenv("QA_SIGNING_KEY", str(world["ana"]))
    monkeypatch.setenv("QA_TRUSTED_KEYS", str(world["trusted"]))
    return {**world, "store": Store(tmp_path / "qa.duckdb"), "tmp": tmp_path}


def _signoffs(store: Store) -> int:
    return int(store.query("select count(*) from signoffs")[0][0])


def _plant_partial_approval(w: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> Store:
    """An approval of the interrupted run P, as a qa that let --override pass it recorded one."""
    store = w["store"]
    assert isinstance(store, Store)
    with monkeypatch.context() as m:
        m.setattr(signoff, "not_approvable", lambda run: "", raising=False)
        record_signoff(store, w["runs"]["P"], "ana", "approve", "partial", override=True,
                       policy=w["policy"])
    assert verify_chain(store) == []
    return store


def test_the_partial_run_is_interrupted_with_two_of_six_cases(w) -> None:
    store, p = w["store"], w["runs"]["P"]
    assert store.query("select status from runs where run_id = ?", [p])[0][0] == "interrupted"
    assert store.query("select count(distinct case_id) from results where run_id = ?", [p])[0][0] == 2


def test_an_unfinished_run_is_never_approved_even_with_override(w, capsys) -> None:
    store, p = w["store"], w["runs"]["P"]
    before = _signoffs(store)
    with pytest.raises(QAError, match=rf"run {p} of 'bicubic' did not finish \(status interrupted: KeyboardInterrupt\)"
                                      r".*never approved, with --override or without") as exc:
        record_signoff(store, p, "ana", "approve", "partial", override=True)
    assert f"qa run --resume {p}" in (exc.value.hint or "") and "start a new run" in (exc.value.hint or "")
    assert _signoffs(store) == before
    rc = qa_main(["signoff", "--run", p, "--decision", "approve", "--override", "--note", "partial",
                  "--db", str(store.path)])
    err = capsys.readouterr().err
    assert rc != 0 and "did not finish (status interrupted" in err and "never approved" in err
    assert _signoffs(store) == before
    record_signoff(store, p, "ana", "reject", "interrupted: not a release")  # rejecting it stays possible
    assert _signoffs(store) == before + 1


@pytest.mark.parametrize("path", ["approved", "file"])
def test_a_stored_approval_of_an_unfinished_run_is_no_baseline(w, monkeypatch, path) -> None:
    """Stores may already hold such an approval: every gate against it fails closed, naming the run's status."""
    store = _plant_partial_approval(w, monkeypatch)
    c, p = w["runs"]["C"], w["runs"]["P"]
    spec = "approved"
    if path == "file":  # written by a qa that exported it
        spec = str(w["tmp"] / "base.parquet")
        with monkeypatch.context() as m:
            m.setattr(baseline_file, "require_finished", lambda found: None, raising=False)
            export_baseline(store, "bicubic", Path(spec))
    policy = load_policy(w["policy"])
    with pytest.raises(GateError, match=rf"cannot be a baseline: run {p} of 'bicubic' did not finish "
                                        r"\(status interrupted") as exc:
        gate_run(store, c, policy, spec)
    assert "approve a finished run in its place" in (exc.value.hint or "")
    with pytest.raises(GateError, match="did not finish"):  # what the pytest session records as Baseline.error
        resolve_baseline(store, store_runs.get_run(store, c), spec)
    assert qa_main(["gate", "--run", c, "--baseline", spec, "--policy", str(w["policy"]),
                    "--db", str(store.path)]) == 2


def test_baseline_export_refuses_an_unfinished_approved_run(w, monkeypatch) -> None:
    store = _plant_partial_approval(w, monkeypatch)
    out = w["tmp"] / "base.parquet"
    with pytest.raises(GateError, match=rf"cannot be a baseline: run {w['runs']['P']} .*did not finish"):
        export_baseline(store, "bicubic", out)
    assert not out.exists()


def test_an_unfinished_run_id_is_no_baseline(w) -> None:
    p = w["runs"]["P"]
    with pytest.raises(GateError, match=rf"baseline run {p} cannot be a baseline: .*did not finish \(status "
                                        "interrupted") as exc:
        gate_run(w["store"], w["runs"]["C"], load_policy(w["policy"]), p)
    assert f"qa run --resume {p}" in (exc.value.hint or "")


def test_a_partial_approval_is_replaced_by_an_override_approval_of_a_finished_run(w, monkeypatch) -> None:
    store = _plant_partial_approval(w, monkeypatch)
    a, c = w["runs"]["A"], w["runs"]["C"]
    with pytest.raises(QAError, match=r"the approved run cannot be a baseline \(run .* did not finish.*"
                                      "needs an explicit override"):
        record_signoff(store, a, "ana", "approve", "", policy=w["policy"])
    record_signoff(store, a, "ana", "approve", "replaces the partial approval", override=True, policy=w["policy"])
    assert gate_run(store, c, load_policy(w["policy"]), "approved").verdict == "pass"


def test_a_baseline_with_failed_cases_says_how_many_images_pair(w) -> None:
    """F finished with tile01 and tile03 failed, approved with an override (a finished run may be): candidate G is
    compared with it over 4 of its 6 images, and the worst-images rule cannot pass for the 2 it cannot judge."""
    store, f, policy = w["store"], w["runs"]["F"], w["policy"]
    assert store.query("select status from runs where run_id = ?", [f])[0][0] == "finished"
    assert gate_run(store, f, load_policy(policy), "none").verdict == "fail"  # its cases check fails
    record_signoff(store, f, "ana", "approve", "two tiles are out of scope", override=True, policy=policy)
    out = gate_run(store, w["runs"]["G"], load_policy(policy), "approved")
    by = {(r.kind, r.metric): r for r in out.results}
    base = by[("baseline", "psnr")]
    assert base.verdict == "pass" and "over 4 of 6 images: 2 have no baseline value in run" in base.message
    assert "(tile01, tile03)" in base.message
    worst = by[("worst_images", "psnr")]
    assert worst.verdict == "needs-review" and worst.blocks, worst.message
    assert "over 4 of 6 images" in worst.message and "a reviewer must look at them" in worst.message
    assert out.blocks
    whole = gate_run(store, w["runs"]["C"], load_policy(policy), w["runs"]["A"])  # a whole pairing says so
    assert "over 6 paired images" in {(r.kind, r.metric): r for r in whole.results}[("baseline", "psnr")].message
