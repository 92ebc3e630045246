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
                     policy: str | Path | None = None, decoder: str | None = None, fmt: str = "text",
                     trusted: str | Path | None = None) -> int:
    """Gate ``run`` (``latest``: the latest run of ``decoder``) against ``baseline`` under ``policy`` (default:
    the shipped policy of the run's track).

    Prints the gate as ``fmt`` (``text``: one line per check and the verdict; ``json``; ``markdown`` for CI
    job summaries). Returns 0 when nothing blocks the release (pass, or a needs-review the policy allows), 1 when
    it is blocked, 2 when the gate cannot be decided (no such run, ambiguous ``latest``, bad policy, or no
    baseline it can trust: see :func:`qa.gate.evaluate.resolve_baseline`; ``trusted`` verifies it); errors and
    warnings go to stderr.
    """
    from qa.gate.formats import outcome_json, outcome_markdown

    try:
        info = load_run(store, run, decoder)
        pol = load_policy(policy if policy is not None else default_policy_path(info.track or "decode"))
        outcome = gate_run(store, info.run_id, pol, baseline, trusted=trusted)
    except QAError as exc:
        print(f"qa gate: error: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        print(outcome_json(outcome))
    elif fmt == "markdown":
        print(outcome_markdown(outcome))
    else:
        for line in outcome.lines():
            print(line)
        print(f"gate id: {outcome.gate_id}")
    for note in outcome.notes:
        if note.startswith("warning:"):
            print(f"qa gate: {note}", file=sys.stderr)
    return 1 if outcome.blocks else 0
