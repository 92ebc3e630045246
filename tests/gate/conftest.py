"""Fixtures of the trust tests (tests/gate/test_trust_*.py, issue 25): a 6-tile set and one decoder, ``tunable``,
whose candidates differ by a setting like pid's ``degrade_sigma``.

``trust_world`` (per module): run A (blur 0) approved by ana as the first release (gated with ``--baseline none``
under ``policy.toml``), candidate C (blur 1.5: clearly worse on psnr and ssim), candidate I (blur 0 again:
identical to A); ana's and bob's keys in one trusted file. ``w`` (per test): a private copy of its store,
anchor and trusted file, with ana's key and that file as the defaults.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from qa.store import Store
from tests.gate.helpers import TunableBicubic, register
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

POLICY = """
[policy]
track = "upscale"
n_boot = 500
[metrics.psnr]
min = 15.0
margin = 0.3
[metrics.ssim]
min = 0.2
margin = 0.01
"""


def run_of(store: Store, refset: Path, blur: float) -> str:
    """A new run of ``tunable`` with this blur (never reused: a new run id each time)."""
    cfg = RunConfig(decoder="tunable", reference_set=str(refset), metrics=["psnr", "ssim"], progress=False)
    return RunEngine(store).start(cfg, TunableBicubic(name="tunable", blur=blur))


@pytest.fixture(scope="module")
def trust_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    register()
    root = tmp_path_factory.mktemp("trust25")
    refset = make_refset(root / "set")
    (root / "policy.toml").write_text(POLICY)
    keys = root / "keys"
    keys.mkdir()
    ana, trusted = make_reviewer(keys, "ana")
    bob, _ = make_reviewer(keys, "bob", trusted)
    store = Store(root / "qa.duckdb")
    runs = {name: run_of(store, refset, blur) for name, blur in (("A", 0.0), ("C", 1.5), ("I", 0.0))}
    policy = load_policy(root / "policy.toml")
    assert gate_run(store, runs["A"], policy, "none", trusted=trusted).verdict == "pass"
    record_signoff(store, runs["A"], "ana", "approve", "first release", key=ana, trusted=trusted,
                   policy=root / "policy.toml")
    return {"root": root, "refset": refset, "runs": runs, "ana": ana, "bob": bob, "trusted": trusted}


@pytest.fixture
def w(trust_world: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A private copy of the world's store and anchor; ana's key and the trusted file as the defaults."""
    root = Path(str(trust_world["root"]))
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):
        shutil.copy(root / name, tmp_path / name)
    trusted = tmp_path / "allowed_signers"  # each test may edit its own copy (revocation, options)
    shutil.copy(str(trust_world["trusted"]), trusted)
    monkeypatch.setenv("QA_SIGNING_KEY", str(trust_world["ana"]))
    monkeypatch.setenv("QA_TRUSTED_KEYS", str(trusted))
    return {**trust_world, "store": Store(tmp_path / "qa.duckdb"), "db": str(tmp_path / "qa.duckdb"),
            "policy": str(root / "policy.toml"), "tmp": tmp_path, "trusted": trusted}
