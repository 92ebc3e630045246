"""CI audit H3 (2026-12-08): a pull request that loosened the policy file (psnr margin 0.3 -> 50 dB), or a
`--policy` of its own, turned a clearly regressed candidate green against the signed approved baseline: nothing
compared the gate's policy with the one the approval was signed under (the approval covers its policy's sha256,
TRUST.md). A gate under another policy now fails every check against that approval, naming both policies and the
way on (a reviewed policy change is a reviewer's approval under the new policy)."""

from __future__ import annotations

from pathlib import Path

from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from tests.gate.conftest import POLICY

LOOSE = POLICY.replace("margin = 0.3", "margin = 50.0").replace("margin = 0.01", "margin = 1.0")


def test_a_loosened_policy_cannot_pass_against_an_approval_made_under_another(w: dict[str, object]) -> None:
    store, runs, trusted = w["store"], w["runs"], w["trusted"]
    strict = load_policy(Path(str(w["policy"])))
    assert gate_run(store, runs["C"], strict, "approved", trusted=trusted).verdict == "fail"  # the regression
    assert gate_run(store, runs["I"], strict, "approved", trusted=trusted).verdict == "pass"  # same as approved

    loose_file = Path(str(w["tmp"])) / "policy.toml"  # the same name, edited in a pull request
    loose_file.write_text(LOOSE)
    loose = load_policy(loose_file)
    out = gate_run(store, runs["C"], loose, "approved", trusted=trusted)
    assert out.verdict == "fail"
    against = [r for r in out.results if r.baseline_kind == "approved"]
    assert against and all(r.verdict == "fail" for r in against)
    text = against[0].message
    assert f"approved under policy {strict.sha256()[:12]}" in text and f"policy.toml ({loose.sha256()[:12]})" in text
    # even a candidate identical to the approved run: the approval says nothing about the new rules
    assert gate_run(store, runs["I"], loose, "approved", trusted=trusted).verdict == "fail"
    bounds = [r for r in out.results if r.kind == "bounds"]
    assert bounds and all(r.verdict == "pass" for r in bounds)  # absolute bounds are judged as before

    # the way on: a reviewer approves a run under the new policy, with an override and a note saying why
    record_signoff(store, runs["I"], "ana", "approve", "policy v2: looser psnr margin, reviewed in PR 12",
                   override=True, trusted=trusted, policy=loose_file)
    assert gate_run(store, runs["C"], loose, "approved", trusted=trusted).verdict == "pass"  # now judged by v2
    assert gate_run(store, runs["C"], strict, "approved", trusted=trusted).verdict == "fail"  # and v1 no more


def test_a_policy_without_a_rule_against_the_baseline_still_cannot_pass(w: dict[str, object]) -> None:
    """The re-audit (2026-12-08): with every margin deleted (or every rule limited to text sets) no check compared
    with the baseline, so the per-check rule above never ran and the regression passed. The policy is now a
    gate-level check against every approved baseline, whatever the rules."""
    store, runs, trusted = w["store"], w["runs"], w["trusted"]
    bounds_only = Path(str(w["tmp"])) / "policy.toml"
    bounds_only.write_text("\n".join(line for line in POLICY.splitlines() if "margin" not in line))
    out = gate_run(store, runs["C"], load_policy(bounds_only), "approved", trusted=trusted)
    assert out.verdict == "fail"
    (policy,) = [r for r in out.results if r.kind == "policy"]
    assert policy.verdict == "fail" and policy.title == "policy vs approved" and "approved under policy" in policy.message
    assert [r.title for r in out.results if r.blocks] == ["policy vs approved"]
    same = gate_run(store, runs["I"], load_policy(Path(str(w["policy"]))), "approved", trusted=trusted)
    assert [(r.title, r.verdict) for r in same.results if r.kind == "policy"] == [("policy vs approved", "pass")]
