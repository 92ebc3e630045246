"""Gating the runs of ``qa demo``: each run under its track's shipped policy, one line per gate."""

from __future__ import annotations

from dataclasses import replace

from qa.errors import QAError
from qa.gate.data import RunInfo, load_run
from qa.gate.evaluate import PLAIN, gate_run
from qa.gate.policy import default_policy_path, load_policy
from qa.store import Store


def gate_demo_runs(store: Store, run_ids: dict[str, str]) -> list[str]:
    """Gate every demo run (decoder name -> run id) against the verified ``approved`` run (against no baseline,
    said so, while the store has no sign-off at all: the first release) and, where the policy names a decoder
    baseline that the demo also ran at the same scale (e.g. esrgan x4 against bicubic x4), against its run.

    Returns one line per gate: decoder, verdict, run id, gate id, and the checks that did not pass. A verdict
    reached without an approved run to compare with says so ("PASS against no approved baseline"), never "PASS"
    alone.
    """
    from qa.gate.signoff import signoff_rows

    lines: list[str] = []
    spec = "approved" if signoff_rows(store) else "none"
    for decoder, run_id in run_ids.items():
        try:
            run = load_run(store, run_id)
            policy = load_policy(default_policy_path(run.track or "decode"))
            base = policy.baseline_decoder
            if base and base != PLAIN and (base not in run_ids or not same_scale(run, load_run(store, run_ids[base]))):
                policy = replace(policy, baseline_decoder="")  # not run here, or another input size: no pairing
            outcome = gate_run(store, run_id, policy, spec)
        except QAError as exc:
            lines.append(f"gate {decoder}: error: {str(exc).splitlines()[0]}")
            continue
        against = ", ".join(("none (nothing approved yet: absolute bounds only)" if b.kind == "none" else
                             b.kind if b.run else f"{b.kind} (none yet)") for b in outcome.baselines)
        unanchored = spec == "none" or not any(b.run is not None and not b.is_decoder for b in outcome.baselines)
        bad = [f"{r.metric} {r.kind}{' vs ' + r.baseline_kind if r.baseline_kind else ''}: {r.verdict}"
               for r in outcome.results if r.verdict in ("fail", "needs-review")]
        counts = {v: sum(r.verdict == v for r in outcome.results) for v in ("pass", "fail", "needs-review", "skipped")}
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        verdict = outcome.verdict.upper() + (" against no approved baseline" if unanchored else "")
        lines.append(f"gate {decoder}: {verdict} (run {run_id}, {outcome.gate_id}; policy "
                     f"{policy.track}; baselines: {against or 'bounds only'}; {summary})"
                     + (f"; {'; '.join(bad)}" if bad else ""))
    return lines


def same_scale(a: RunInfo, b: RunInfo) -> bool:
    """Whether two runs' decoders have the same recorded output scale (unknown scales are not the same)."""
    return a.scale is not None and a.scale == b.scale
