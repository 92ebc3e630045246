"""A stochastic decoder is gated against a baseline made with the same seeds: other seeds are other random draws,
and a candidate re-run with new seeds until its draws pass would otherwise pass a gate its first seeds failed. A
deterministic decoder's seeds do not matter; a run stored before qa recorded stochasticity counts as stochastic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.gate.data import GateError
from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy, parse_policy
from qa.gate.signoff import record_signoff
from qa.store import Store
from tests.engine.test_decoder_contract import SeedNoiseBicubic, StochasticSeedNoiseBicubic, _register
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

POLICY_TOML = '[policy]\ntrack = "upscale"\nn_boot = 200\n[metrics.psnr]\nmin = 10.0\nmargin = 0.3\n'


POLICY = parse_policy({"policy": {"track": "upscale", "n_boot": 200}, "metrics": {"psnr": {"min": 10.0, "margin": 0.3}}})


def _runs(tmp_path: Path, cls: type, seeds: list[list[int]]) -> tuple[Store, list[str]]:
    _register()
    store = Store(tmp_path / "qa.duckdb")
    refset = make_refset(tmp_path / "set", n=3)
    noise = 0.02 if cls is StochasticSeedNoiseBicubic else 0.0
    runs = [RunEngine(store).start(RunConfig(decoder=cls.family, reference_set=str(refset), metrics=["psnr"],
                                             seeds=s, progress=False), cls(name=cls.family, noise=noise))
            for s in seeds]
    return store, runs


def test_a_stochastic_candidate_with_other_seeds_cannot_be_gated_against_the_approved_run(tmp_path: Path) -> None:
    store, (approved, shopped, same) = _runs(tmp_path, StochasticSeedNoiseBicubic, [[0, 1], [2, 3], [0, 1]])
    key, trusted = make_reviewer(tmp_path, "ana")
    (tmp_path / "policy.toml").write_text(POLICY_TOML)
    policy = load_policy(tmp_path / "policy.toml")  # approval needs a first-release gate under this very file
    assert gate_run(store, approved, policy, "none", trusted=trusted).verdict == "pass"
    record_signoff(store, approved, "ana", "approve", "first release", key=key, trusted=trusted,
                   policy=tmp_path / "policy.toml")
    with pytest.raises(GateError, match=r"decoded seeds \[0, 1\], the candidate .* seeds \[2, 3\]") as err:
        gate_run(store, shopped, policy, "approved", trusted=trusted)
    assert "--seeds 0,1" in str(err.value.hint)
    with pytest.raises(GateError, match="other random samples"):
        gate_run(store, shopped, policy, approved)  # an explicit run id: the same rule
    assert gate_run(store, same, policy, "approved", trusted=trusted).verdict == "pass"  # same seeds, same draws


def test_a_deterministic_decoders_seeds_do_not_matter_unless_a_run_does_not_say(tmp_path: Path) -> None:
    store, (base, other) = _runs(tmp_path, SeedNoiseBicubic, [[0, 1], [2, 3]])
    assert gate_run(store, other, POLICY, base).verdict == "pass"
    with store.transaction() as con:  # a baseline stored before qa recorded whether its decoder draws with seeds
        cfg = json.loads(con.execute("select config_json from runs where run_id = ?", [base]).fetchone()[0])
        del cfg["stochastic"]
        con.execute("update runs set config_json = ? where run_id = ?", [json.dumps(cfg), base])
    with pytest.raises(GateError, match="other random samples"):
        gate_run(store, other, POLICY, base)
