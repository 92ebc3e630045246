"""`qa gate`, baselines, fail-closed rules, sign-offs and `qa status`, on runs of a 6-tile 64x64 set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.cli.main import main as qa_main
from qa.engine.plan import PlannedIdentity, find_reusable, plan_run
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.checks import GateContext
from qa.gate.cli import run_gate_command
from qa.gate.data import GateError, load_run
from qa.gate.demo import gate_demo_runs
from qa.gate.evaluate import gate_run, resolve_baseline
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff, verify_chain
from qa.gate.status import status_output
from qa.store import Store
from tests.gate.helpers import register
from tests.gate.signing_helpers import export_reviewer, make_reviewer
from tests.helpers import make_refset, register_test_decoders

POLICY = """
[policy]
track = "upscale"
baseline_decoder = "bicubic"
n_boot = 1000
[metrics.psnr]
min = 15.0
margin = 0.3
decoder_margin = 0.3
[metrics.ssim]
required = false
margin = 0.01
decoder_margin = 0.01
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One DB with runs: bicubic twice, blurry-bicubic, and nan (NaN output on tile03); copied per test."""
    register()
    register_test_decoders()
    root = tmp_path_factory.mktemp("gatelogic")
    refset = make_refset(root / "set")
    store = Store(root / "qa.duckdb")
    engine = RunEngine(store)
    runs = {}
    for key, dec in (("bicubic1", "bicubic"), ("bicubic2", "bicubic"), ("blurry", "blurry-bicubic"), ("nan", "nan")):
        runs[key] = engine.start(RunConfig(decoder=dec, reference_set=str(refset), metrics=["psnr", "ssim"],
                                           progress=False))
    (root / "policy.toml").write_text(POLICY)
    return {"root": root, "refset": refset, "runs": runs}


@pytest.fixture
def store(world: dict[str, object], tmp_path: Path) -> Store:
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):  # a database and its sign-off anchor go together
        shutil.copy(Path(str(world["root"])) / name, tmp_path / name)
    return Store(tmp_path / "qa.duckdb")


@pytest.fixture(autouse=True)
def reviewer_keys(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """One trusted key that may sign as every reviewer these tests name, exported as qa signoff's defaults."""
    key, trusted = make_reviewer(tmp_path_factory.mktemp("keys"), "ana,bo,r0,r1,r2,r3")
    export_reviewer(monkeypatch, key, trusted)
    return key, trusted


@pytest.fixture
def policy_path(world: dict[str, object]) -> Path:
    return Path(str(world["root"])) / "policy.toml"


def test_gate_command_exit_codes(world, store, policy_path, capsys) -> None:
    runs = world["runs"]
    assert run_gate_command(store, run=runs["bicubic2"], baseline=runs["bicubic1"], policy=policy_path) == 0
    out = capsys.readouterr().out
    assert "verdict: pass" in out and "worse by 0 dB" in out
    assert run_gate_command(store, run=runs["blurry"], baseline="approved", policy=policy_path) == 2
    assert "no approved run of decoder 'blurry-bicubic'" in capsys.readouterr().err  # no baseline: not a pass
    assert run_gate_command(store, run=runs["blurry"], baseline="none", policy=policy_path) == 1
    out = capsys.readouterr().out
    assert "verdict: fail (blocks the release)" in out and "chosen with --baseline none" in out
    assert "psnr (higher is better)" in out and "baseline decoder:bicubic run" in out and "allowed 0.3 dB -> fail" in out
    assert run_gate_command(store, run="no-such-run", baseline="approved", policy=policy_path) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert run_gate_command(store, run=runs["blurry"], baseline="also-missing", policy=policy_path) == 2
    rows = store.query("select run_id, verdict, baseline_kind, policy_sha256 from gates order by decided_at")
    sha = load_policy(policy_path).sha256()
    # the first release, chosen explicitly: the gate is recorded against no baseline ("none")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(runs["bicubic2"], "pass", "run", sha),
                                                     (runs["blurry"], "fail", "none", sha)]


def test_required_nan_fails_with_reason_optional_skips(world, store, policy_path) -> None:
    run = load_run(store, world["runs"]["nan"])
    ctx = GateContext(store, run, load_policy(policy_path))
    base = resolve_baseline(store, run, "decoder:bicubic")
    psnr = ctx.against("psnr", base)
    assert psnr.verdict == "fail" and "required metric missing" in psnr.message
    assert "tile03" in psnr.message and "NaN" in psnr.message
    ssim = ctx.against("ssim", base)
    assert ssim.verdict == "skipped" and "optional metric skipped" in ssim.message and "tile03" in ssim.message
    assert ctx.cases_ok().verdict == "fail"
    unknown = ctx.bound("not_a_metric", 0.0, None)
    assert unknown.verdict == "fail" and "not registered" in unknown.message  # ad hoc checks are required


def test_case_missing_in_candidate_counts_against_it(world, store, policy_path) -> None:
    runs = world["runs"]
    with store.transaction() as con:  # the candidate lost every row of tile04 (e.g. a shard never written)
        con.execute("delete from results where run_id = ? and case_id = 'tile04'", [runs["bicubic2"]])
    run = load_run(store, runs["bicubic2"])
    res = GateContext(store, run, load_policy(policy_path)).against("psnr", resolve_baseline(store, run, runs["bicubic1"]))
    assert res.verdict == "fail" and "tile04" in res.message and "not in the candidate" in res.message


def test_approved_baseline_and_status(world, store, policy_path) -> None:
    runs = world["runs"]
    run2 = load_run(store, runs["bicubic2"])
    with pytest.raises(GateError, match="no approved run of decoder 'bicubic'"):
        resolve_baseline(store, run2, "approved")
    assert "no approved run" in status_output(store, "bicubic")
    # the first release rests on a gate against no baseline, chosen explicitly; the next on a gate against it
    assert gate_run(store, runs["bicubic1"], load_policy(policy_path), "none").verdict == "pass"
    record_signoff(store, runs["bicubic1"], "ana", "approve", "first release", policy=policy_path)
    assert gate_run(store, runs["bicubic2"], load_policy(policy_path), "approved").verdict == "pass"
    record_signoff(store, runs["bicubic2"], "ana", "approve", "", policy=policy_path)
    assert resolve_baseline(store, run2, "approved").run_id == runs["bicubic2"]
    record_signoff(store, runs["bicubic2"], "bo", "reject", "rolled back")  # latest decision wins
    assert resolve_baseline(store, run2, "approved").run_id == runs["bicubic1"]
    outcome = gate_run(store, runs["bicubic2"], load_policy(policy_path), "approved")
    assert outcome.verdict == "pass" and outcome.baselines[0].run_id == runs["bicubic1"]
    text = status_output(store, "bicubic")
    assert f"approved run: run {runs['bicubic1']}" in text and "reject by bo" in text and "gate pass (under a policy that is not the shipped one) vs approved" in text


def test_signoff_chain_detects_edit_and_delete(world, store, tmp_path) -> None:
    runs = world["runs"]
    for i, rid in enumerate([runs["bicubic1"], runs["bicubic2"], runs["blurry"], runs["bicubic1"]]):
        record_signoff(store, rid, f"r{i}", "reject", f"note {i}")
    assert verify_chain(store) == []
    pristine = tmp_path / "pristine.duckdb"
    shutil.copy(store.path, pristine)
    shutil.copy(store.path.with_name(store.path.name + ".signoff-head"), tmp_path / "pristine.duckdb.signoff-head")

    with store.transaction() as con:
        con.execute("update signoffs set note = 'nothing to see' where seq = 2")
    problems = verify_chain(store)
    assert len(problems) == 1 and "seq 2" in problems[0] and "edited" in problems[0]

    shutil.copy(pristine, store.path)
    with store.transaction() as con:
        con.execute("delete from signoffs where seq = 3")
    problems = verify_chain(store)
    assert any("seq 3..3 missing" in p for p in problems) and any("seq 4: prev_hash" in p for p in problems)

    shutil.copy(pristine, store.path)
    with store.transaction() as con:
        con.execute("delete from signoffs where seq = 4")  # the newest row: the chain alone stays consistent
    assert any("anchor" in p and "seq 4" in p for p in verify_chain(store))

    shutil.copy(pristine, store.path)
    assert qa_main(["signoff", "verify", "--db", str(store.path)]) == 0
    with store.transaction() as con:
        con.execute("update signoffs set decision = 'approve' where seq = 1")
    assert qa_main(["signoff", "verify", "--db", str(store.path)]) == 1


def test_approving_a_failed_gate_needs_override_and_note(world, store, policy_path, capsys) -> None:
    blurry = world["runs"]["blurry"]
    assert gate_run(store, blurry, load_policy(policy_path), "none").verdict == "fail"
    with pytest.raises(QAError, match="needs an explicit override"):
        record_signoff(store, blurry, "ana", "approve", "looks fine", policy=policy_path)
    with pytest.raises(QAError, match="needs a note"):
        record_signoff(store, blurry, "ana", "approve", "  ", override=True, policy=policy_path)
    assert qa_main(["signoff", "--run", blurry, "--reviewer", "ana", "--decision", "approve", "--db",
                    str(store.path)]) == 2
    assert "override" in capsys.readouterr().err
    assert qa_main(["signoff", "--run", blurry, "--reviewer", "ana", "--decision", "approve", "--override",
                    "--note", "blur accepted for the low-bandwidth tier", "--db", str(store.path)]) == 0
    assert record_signoff(store, blurry, "bo", "reject") == 2  # rejecting needs nothing
    row = store.query("select reviewer, decision, override, note from signoffs where seq = 1")[0]
    assert row == ("ana", "approve", True, "blur accepted for the low-bandwidth tier")
    with pytest.raises(QAError, match="no run"):
        record_signoff(store, "nope", "ana", "approve")
    assert verify_chain(store) == []


def test_a_first_release_without_a_required_metric_fails(world, store) -> None:  # noqa: ANN001
    """CI audit H2 (2026-12-08): a run made with `--metrics psnr,ssim`, gated with `--baseline none`, passed: the
    required invented-detail metrics, having only margins against a baseline, were "skipped: no baseline to compare
    with", and the run could be approved as the first release, anchoring every later gate on nothing."""
    from qa.gate.policy import default_policy_path

    out = gate_run(store, world["runs"]["bicubic1"], load_policy(default_policy_path("upscale")), "none")
    assert out.verdict == "fail"
    missing = {r.metric for r in out.results if r.verdict == "fail" and "required metric missing" in r.message}
    assert {"invented_detail", "invented_peak", "lost_detail"} <= missing
    assert all("has no" in r.message for r in out.results if r.metric in missing and r.verdict == "fail")


def test_planned_identity_matches_the_engine(world, store) -> None:
    cfg = RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=["psnr", "ssim"], progress=False)
    stored = store.query("select identity_sha256 from runs where run_id = ?", [world["runs"]["bicubic1"]])[0][0]
    assert plan_run(cfg).identity.identity == stored
    cfg.metrics = ["psnr"]
    assert plan_run(cfg).identity.identity != stored


def test_demo_gates_each_run_in_one_line(world, store) -> None:
    # the demo's runs compute every metric, so also the plain decode's that the upscale policy compares with, and
    # every metric it requires (a first release without one fails: CI audit H2)
    metrics = ["psnr", "ssim", "baseline_psnr", "baseline_ssim", "invented_detail", "invented_peak", "lost_detail",
               "invented_contradicting", "chroma_peak"]
    runs = {k: RunEngine(store).start(RunConfig(decoder=d, reference_set=str(world["refset"]), metrics=metrics,
                                                progress=False)) for k, d in (("bicubic", "bicubic"),
                                                                              ("blurry", "blurry-bicubic"))}
    lines = gate_demo_runs(store, {"bicubic": runs["bicubic"], "blurry-bicubic": runs["blurry"]})
    assert len(lines) == 2
    # a gate against no baseline never says PASS alone (issue 27)
    assert lines[0].startswith("gate bicubic: PASS against no approved baseline") and "none (nothing approved yet" in lines[0]
    assert lines[1].startswith("gate blurry-bicubic: ") and "decoder:plain" in lines[1]  # vs its own plain decode
    assert store.query("select count(*) from gates")[0][0] == 2


def test_not_applicable_skips_only_when_the_policy_says_so_and_never_hides_failures(world, store, tmp_path) -> None:
    """A metric that does not apply to a decoder at all (bicubic is deterministic: no per-seed source) fails a required rule by default;
    `not_applicable = "skip"` skips it with the reason, but a value lost to NaN output still fails."""
    from qa.gate.policy import parse_policy

    run_id = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(world["refset"]),
                                              metrics=["psnr", "seed_alignment"], progress=False))
    run = load_run(store, run_id)
    rules = {"seed_alignment": {"group": "fidelity", "min": 1.0}, "psnr": {"min": 15.0}}
    strict = parse_policy({"policy": {"track": "upscale"}, "metrics": rules})
    lenient = parse_policy({"policy": {"track": "upscale"},
                            "metrics": {m: dict(r, not_applicable="skip") for m, r in rules.items()}})
    assert lenient.sha256() != strict.sha256()  # the rule is part of the stored policy identity
    res = GateContext(store, run, strict).bound("seed_alignment", 1.0, None)
    assert res.verdict == "fail" and "required metric missing" in res.message and "identical" in res.message
    res = GateContext(store, run, lenient).bound("seed_alignment", 1.0, None)
    assert res.verdict == "skipped" and "does not apply to bicubic" in res.message and "identical" in res.message
    nan_run = load_run(store, world["runs"]["nan"])  # psnr missing on tile03 because of NaN output: still fails
    res = GateContext(store, nan_run, lenient).bound("psnr", 15.0, None)
    assert res.verdict == "fail" and "NaN" in res.message
    with pytest.raises(QAError, match="not_applicable"):
        parse_policy({"policy": {"track": "upscale"}, "metrics": {"psnr": {"not_applicable": "ignore"}}})


def test_a_finished_run_with_more_metrics_is_reused_for_fewer(world, store) -> None:
    """`pytest suites/` after `qa demo`: the demo's run computed the policy's metrics and more; it stands in."""
    fewer = RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=["psnr"], progress=False)
    got = RunEngine(store).ensure(fewer)
    assert got.reused and got.run_id in (world["runs"]["bicubic1"], world["runs"]["bicubic2"])
    # another metric version, another decoder weight or an unknown metric is not the same run
    p = plan_run(fewer).identity
    assert find_reusable(store, PlannedIdentity(p.identity + "x", p.base, {"psnr": "0-other"})) is None
    assert find_reusable(store, PlannedIdentity(p.identity + "x", p.base + "x", p.metric_versions)) is None
    more = RunConfig(decoder="bicubic", reference_set=str(world["refset"]), metrics=["psnr", "ssim", "ms_ssim"],
                     progress=False)
    assert not RunEngine(store).ensure(more).reused  # ms_ssim was never computed: a new run
