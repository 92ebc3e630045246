"""The policy's decoder baseline is part of every gate that can unlock an approval (audit finding F1, 2026-12-07).

A pytest session run with ``-k "not decoder_baseline"`` used to store a gate that named only the baselines its
tests used; the gate counted as complete and its passing verdict unlocked an approval although the candidate
was clearly worse than its own plain decode. Now the checks against the policy's decoder baseline are required
whether or not the caller made them, and the approval's recomputation of the checks includes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.baseline import Baseline
from qa.gate.evaluate import NONE_NOTE, evaluate, gate_run, store_gate
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from qa.store import Store
from qa.store.runs import get_run
from tests.gate.helpers import TunableBicubic, register
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

#: a first release (no run baseline) judged by bounds and by the candidate's own plain decode (bicubic x4)
POLICY = """
[policy]
track = "upscale"
n_boot = 300
baseline_decoder = "plain"
[metrics.psnr]
min = 5.0
decoder_margin = 0.2
"""


class BlurredUpscaler(TunableBicubic):
    """A blurred bicubic x4 whose plain decode is plain bicubic (as PiD's is its VAE decode upsampled)."""

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        return BicubicDecoder.decode(self, batch, 0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    register()
    root = tmp_path_factory.mktemp("decbase")
    (root / "policy.toml").write_text(POLICY)
    ana, trusted = make_reviewer(root, "ana")
    store = Store(root / "qa.duckdb")
    cfg = RunConfig(decoder="tunable", reference_set=str(make_refset(root / "set")),
                    metrics=["psnr", "baseline_psnr"], progress=False)
    run_id = RunEngine(store).start(cfg, BlurredUpscaler(name="tunable", blur=2.0))  # far below plain bicubic
    return {"root": root, "store": store, "run": run_id, "ana": ana, "trusted": trusted,
            "policy": load_policy(root / "policy.toml")}


def _gate_without_decoder_checks(w: dict[str, object]) -> str:
    """What a session run with -k "not decoder_baseline" stores: the bounds against no baseline, nothing else."""
    store, policy = w["store"], w["policy"]
    run = get_run(store, str(w["run"]))  # type: ignore[arg-type]
    assert run is not None
    none = Baseline("none", None, NONE_NOTE)
    ctx = evaluate(store, run, policy, [none])  # type: ignore[arg-type]
    assert all(not r.blocks for r in ctx.results)  # the bounds alone pass
    gate_id, verdict = store_gate(store, run, policy, [none], ctx.results)  # type: ignore[arg-type]
    assert verdict == "pass"
    return gate_id


def _approve(w: dict[str, object]) -> int:
    return record_signoff(w["store"], str(w["run"]), "ana", "approve", "", key=w["ana"],  # type: ignore[arg-type]
                          trusted=w["trusted"], policy=Path(str(w["root"])) / "policy.toml")  # type: ignore[arg-type]


def test_the_whole_gate_fails_on_the_decoder_baseline(world: dict[str, object]) -> None:
    out = gate_run(world["store"], str(world["run"]), world["policy"], "none")  # type: ignore[arg-type]
    assert out.verdict == "fail"
    assert any(r.baseline_kind == "decoder:plain" and r.verdict == "fail" for r in out.results)


def test_a_gate_without_the_decoder_baseline_checks_is_partial_and_unlocks_nothing(world: dict[str, object]) -> None:
    gate_id = _gate_without_decoder_checks(world)
    row = world["store"].query("select details_json from gates where gate_id = ?", [gate_id])[0]  # type: ignore[attr-defined]
    assert json.loads(row[0])["complete"] is False
    with pytest.raises(QAError, match="did not make every check"):
        _approve(world)


def test_a_gate_row_claiming_completeness_is_recomputed_with_the_decoder_baseline(world: dict[str, object]) -> None:
    gate_id = _gate_without_decoder_checks(world)
    store = world["store"]
    details = json.loads(store.query("select details_json from gates where gate_id = ?", [gate_id])[0][0])  # type: ignore[attr-defined]
    details["complete"] = True  # written by hand, or by a qa that did not require the decoder baseline
    with store.transaction() as con:  # type: ignore[attr-defined]
        con.execute("update gates set details_json = ? where gate_id = ?", [json.dumps(details), gate_id])
    with pytest.raises(QAError, match=r"recomputed from the stored numbers fail \(psnr vs decoder:plain"):
        _approve(world)


def test_a_decoder_baseline_with_no_run_in_the_store_cannot_be_decided(world: dict[str, object], capsys) -> None:
    """``--baseline decoder:TYPO`` is exit 2 (the gate cannot be decided), not a release FAIL blaming the
    candidate; a decoder with runs but none on this set stays a failed check (fail closed)."""
    from qa.cli.main import main as qa_main

    argv = ["gate", "--run", str(world["run"]), "--policy", str(Path(str(world["root"])) / "policy.toml"),
            "--db", str(world["store"].path)]  # type: ignore[attr-defined]
    assert qa_main([*argv, "--baseline", "decoder:tunabel"]) == 2
    err = capsys.readouterr().err
    assert "no run of decoder 'tunabel'" in err and "tunable" in err
