"""The CI example (examples/github/qa-release-gate.yml, docs/ci.md) run as written: every `run:` command of its two
jobs but `make install`, in a checkout-like folder whose committed baseline and trusted keys were made here, on
a 4-tile set with the bicubic decoder (the file's env block names the decoder and set; only those change). Proves
the PR gate verifies and gates against the committed file from an empty store, writes JUnit and the step
summary even when the gate fails, and the weekly job writes its report."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import default_policy_path, load_policy
from qa.gate.signoff import record_signoff
from qa.store import Store
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "github" / "qa-release-gate.yml"

pytestmark = pytest.mark.slow


def _steps(job: dict) -> list[tuple[str, str, bool]]:  # type: ignore[type-arg]
    """(name, command, runs even after a failure) of each `run:` step but the install."""
    return [(s.get("name", ""), s["run"], s.get("if") == "always()") for s in job["steps"]
            if "run" in s and s["run"].strip() != "make install"]


def _release(root: Path, refset: Path) -> dict[str, str]:
    """What a repository commits: release/allowed_signers and release/bicubic-baseline.parquet (approved here)."""
    store = Store(root / "approval" / "qa.duckdb")
    policy = load_policy(default_policy_path("upscale"))
    from qa.session.suite import SuiteSession

    metrics = SuiteSession.run_metrics(policy)  # the policy's registered metrics, as the suites run them
    run = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=metrics,
                                           progress=False))
    (root / "release").mkdir()
    key, trusted = make_reviewer(root / "release", "ana", root / "release" / "allowed_signers")
    (root / "release" / "ana_ed25519").rename(root / "ana_ed25519")  # the private key is never committed
    (root / "release" / "ana_ed25519.pub").unlink()
    gate_run(store, run, policy, "none", trusted=trusted)
    record_signoff(store, run, "ana", "approve", "first release (LPIPS/FID weights are not installed here)",
                   override=True, key=root / "ana_ed25519", trusted=trusted)
    from qa.gate.baseline_file import export_baseline

    export_baseline(store, "bicubic", root / "release" / "bicubic-baseline.parquet", trusted)
    return {"QA_DECODER": "bicubic", "QA_REFERENCE_SET": str(refset), "QA_BASELINE": "release/bicubic-baseline.parquet"}


def test_ci_example_runs_as_written(tmp_path: Path) -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["schedule"][0]["cron"]
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copytree(REPO / "suites", root / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(REPO / ".venv")
    refset = make_refset(tmp_path / "tiles", n=4)
    summary = tmp_path / "step_summary.md"
    env = {**os.environ, **flow["env"], **_release(root, refset), "GITHUB_STEP_SUMMARY": str(summary),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("QA_SIGNING_KEY", None)

    def job(name: str) -> dict[str, int]:
        codes: dict[str, int] = {}
        failed = False
        for step, command, always in _steps(flow["jobs"][name]):
            if failed and not always:
                continue
            done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=root, env=env, capture_output=True,
                                  text=True, timeout=900)
            codes[step] = done.returncode
            failed = failed or done.returncode != 0
        return codes

    codes = job("gate")
    assert set(codes.values()) == {0}, codes  # a candidate identical to the approved run passes
    # pytest gates against the file from an empty store: it ran the candidate, compared it with the approved run
    junit = (root / "reports" / "qa-gate.xml").read_text()
    assert "test_not_worse_than_baseline" in junit and "qa.run_id" in junit
    assert "cannot compare with baseline" not in junit  # the baseline verified
    assert summary.read_text().startswith("### qa gate: PASS")
    assert job("weekly-report") == {"run the decoders": 0, "weekly report": 0,
                                    "gate against the committed baseline (recorded in the report; the report is "
                                    "written either way)": 0}
    assert summary.read_text().count("### qa gate:") == 2  # the PR summary and the weekly one
    assert (root / "reports" / "weekly.html").stat().st_size > 10_000
    # a failing PR: the committed file changed by one byte; the gate stops and the summary still says why
    data = bytearray((root / env["QA_BASELINE"]).read_bytes())
    data[len(data) // 3] ^= 0x01
    (root / env["QA_BASELINE"]).write_bytes(bytes(data))
    summary.write_text("")
    codes = job("gate")
    assert codes["verify the committed baseline"] == 2 and "release gate (pytest)" not in codes
    assert codes["step summary (also when the gate fails)"] == 0
    assert "was changed after export" in summary.read_text()
