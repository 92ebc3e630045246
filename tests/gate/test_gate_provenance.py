"""The provenance a reviewer needs in a gate's JSON and Markdown and in the report's gate view (report audit M6):
the candidate's and the baseline run's commit, weights, reference-set sha256, seeds and decoder settings (their
values, not only their difference), and the policy by its sha256 rather than a runner-local path. Same world as
the trust tests (tests/gate/conftest.py): candidate C (blur 1.5) gated against the approved run A (blur 0)."""

from __future__ import annotations

import dataclasses
import json

from qa.gate.data import run_settings
from qa.gate.evaluate import gate_run
from qa.gate.formats import md_code, outcome_dict, outcome_json, outcome_markdown
from qa.gate.policy import load_policy
from qa.report.gates import _compact
from qa.store import runs as store_runs
from qa.store.gates import gates_of

IDENTITY = ("git_commit", "weights_sha256", "reference_set", "reference_set_sha256", "device", "track", "decoder",
            "qa_version", "identity_sha256")


def _gate_c(w: dict[str, object], baseline: str = "approved"):  # noqa: ANN202
    policy = load_policy(str(w["policy"]))
    return gate_run(w["store"], w["runs"]["C"], policy, baseline, trusted=w["trusted"]), policy  # type: ignore[arg-type,index]


def test_gate_json_names_candidate_and_baseline_runs_with_their_settings(w) -> None:  # noqa: ANN001
    store, runs = w["store"], w["runs"]
    outcome, policy = _gate_c(w)
    doc = json.loads(outcome_json(outcome))
    for key, rid in (("candidate", runs["C"]), ("baseline", runs["A"])):
        stored = store_runs.get_run(store, rid)
        got = doc[key]
        assert got["run_id"] == rid and got["status"] == "finished" and got["seeds"] == list(stored.seeds)
        assert all(got[f] == getattr(stored, f) for f in IDENTITY), key
        assert got["decoder_settings"] == run_settings(store, rid)
        assert got["started_at"] == stored.started_at.isoformat() + "+00:00"  # stored naive UTC, said as UTC
    assert doc["candidate"]["decoder_settings"]["blur"] == 1.5 and doc["baseline"]["decoder_settings"]["blur"] == 0.0
    assert doc["baseline"]["kind"] == "approved" and doc["policy_sha256"] == policy.sha256()
    first = json.loads(outcome_json(_gate_c(w, "none")[0]))  # no baseline run: the candidate alone
    assert first["baseline"] is None and first["candidate"] == doc["candidate"]


def test_gate_markdown_has_a_provenance_block_and_the_policy_by_sha(w) -> None:  # noqa: ANN001
    store, runs = w["store"], w["runs"]
    outcome, policy = _gate_c(w)
    text = outcome_markdown(outcome)
    cand, base = store_runs.get_run(store, runs["C"]), store_runs.get_run(store, runs["A"])
    line = next(x for x in text.splitlines() if x.startswith("- candidate "))
    assert md_code(runs["C"]) in line and f"weights sha256 {md_code(cand.weights_sha256 or 'none')}" in line
    assert f"sha256 {md_code(cand.reference_set_sha256)}" in line and "seeds " + md_code(",".join(
        str(s) for s in cand.seeds)) in line
    assert md_code(cand.git_commit or "unknown") in line
    assert md_code(json.dumps(run_settings(store, runs["C"]), sort_keys=True, separators=(",", ":"))) in line
    line = next(x for x in text.splitlines() if x.startswith("- baseline (approved) "))
    assert md_code(runs["A"]) in line and '"blur":0.0' in line and md_code(base.git_commit or "unknown") in line
    assert f"- policy `policy.toml` sha256 `{policy.sha256()}`" in text
    assert str(w["policy"]) not in text  # no runner-local absolute path


def test_gate_markdown_provenance_escapes_stored_text(w) -> None:  # noqa: ANN001
    outcome, _ = _gate_c(w)
    hostile = {**outcome_dict(outcome)["candidate"], "device": "cpu\n# owned <img src=x> | [a](http://e)",
               "reference_set": "set|`x`", "decoder_settings": {"path": "a`b\rc"}}
    text = outcome_markdown(dataclasses.replace(outcome, provenance={"candidate": hostile, "baseline": None}))
    line = next(x for x in text.splitlines() if x.startswith("- candidate "))
    assert "# owned &lt;img src=x&gt; \\| \\[a\\](http://e)" in line and "set\\|\\`x\\`" in line
    assert not any(x.startswith("# owned") for x in text.splitlines()) and "<img" not in text
    assert not any(x.startswith("- baseline (") for x in text.splitlines())  # no baseline run given


def test_report_gate_view_names_the_policy_by_sha(w) -> None:  # noqa: ANN001
    outcome, policy = _gate_c(w)
    row = next(g for g in gates_of(w["store"], [w["runs"]["C"]]) if g.gate_id == outcome.gate_id)
    sha = policy.sha256()
    html = _compact(row, "tunable", shipped="")
    assert f"policy <code>policy.toml</code> sha256 <code>{sha[:12]}</code>" in html and sha[12:] not in html
    assert str(w["policy"]) not in html and "(shipped)" not in html
    assert f"sha256 <code>{sha[:12]}</code> (shipped)" in _compact(row, "tunable", shipped=sha)
