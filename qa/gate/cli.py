"""``qa gate``: the same checks as the suites, outside pytest. Exit 0 pass, 1 fail, 2 error."""

from __future__ import annotations

import sys
from pathlib import Path

from qa.errors import QAError
from qa.gate.data import load_run
from qa.gate.evaluate import gate_run
from qa.gate.policy import default_policy_path, load_policy
from qa.store import Store


def run_gate_command(store: Store, run: str = "latest", baseline: str | None = "approved",
                     policy: str | Path | None = None) -> int:
    """Gate ``run`` against ``baseline`` under ``policy`` (default: the shipped policy of the run's track).

    Prints one line per check and the verdict. Returns 0 when nothing blocks the release (pass, or a
    needs-review the policy allows), 1 when it is blocked, 2 when the gate cannot be decided (no such run,
    baseline or policy); errors go to stderr.
    """
    try:
        info = load_run(store, run)
        pol = load_policy(policy if policy is not None else default_policy_path(info.track or "decode"))
        outcome = gate_run(store, info.run_id, pol, baseline)
    except QAError as exc:
        print(f"qa gate: error: {exc}", file=sys.stderr)
        return 2
    for line in outcome.lines():
        print(line)
    print(f"gate id: {outcome.gate_id}")
    return 1 if outcome.blocks else 0
