"""A decided gate as JSON or Markdown (for CI job summaries); text is :meth:`GateOutcome.lines`.

Markdown escapes ``|``, backticks and angle brackets in every value, so a hostile metric or run name cannot
break the table or inject HTML into a CI summary page.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import PurePath
from typing import Any

from qa.gate.checks import CheckResult
from qa.gate.data import GateError, settings_json
from qa.gate.evaluate import GateOutcome
from qa.gate.units import metric_target_unit
from qa.metrics.declarations import declared_unit
from qa.plain_text import one_line

FORMATS = ("text", "json", "markdown")


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x + 0.0:.4g}"  # + 0.0: never "-0"


def md(text: object) -> str:
    """A value made safe for one Markdown table cell: no line break (``\\r``, ``U+2028`` and the like are spaces, so
    a hostile id cannot start a heading of its own), table, code, HTML, link or image syntax survives (a
    sign-off note's ``![x](https://...)`` would otherwise put an outside image in a CI job summary)."""
    s = one_line(str(text)).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    s = s.replace("[", "\\[").replace("]", "\\]")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def md_code(text: object) -> str:
    """A value as one Markdown code span (safe in a table cell): shown literally, so nothing in it is escaped but
    the table's pipes, and its fence is one backtick longer than its longest run of backticks."""
    s = one_line(str(text)).replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s[:1] == "`" or s[-1:] == "`" else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def check_name(r: CheckResult) -> str:
    """The check's short name (:attr:`CheckResult.title`)."""
    return r.title


def failed_checks(results: list[CheckResult]) -> list[CheckResult]:
    """The checks that block the release (fail, or needs-review the policy does not allow), in order."""
    return [r for r in results if r.blocks]


def outcome_dict(outcome: GateOutcome) -> dict[str, Any]:
    """Everything about the gate as plain JSON types."""
    return {
        "gate_id": outcome.gate_id, "run_id": outcome.run.run_id, "decoder": outcome.run.decoder,
        "track": outcome.run.track, "verdict": outcome.verdict, "blocks": outcome.blocks,
        "policy": outcome.policy.source, "policy_sha256": outcome.policy.sha256(),
        "baselines": [{"kind": b.kind, "run_id": b.run_id, "note": b.note, "inapplicable": b.inapplicable}
                      for b in outcome.baselines],
        "settings": outcome.settings, "notes": outcome.notes,
        "candidate": outcome.provenance.get("candidate"), "baseline": outcome.provenance.get("baseline"),
        "failed": [check_name(r) for r in failed_checks(outcome.results)],
        "checks": [_check_dict(r) for r in outcome.results],
    }


def _check_dict(r: CheckResult) -> dict[str, Any]:
    """One check as a reader of the JSON needs it: one sign (``worse_by``, + = worse; the internal goodness
    difference ``diff_mean``/``diff_ci``, + = better, is left out), the metric's ``unit`` and what ``better``
    means (higher, lower, closer to a value, or none)."""
    out = {k: v for k, v in r.to_dict().items() if k not in ("diff_mean", "diff_ci")} | {"name": check_name(r)}
    if r.kind != "cases":
        try:
            target, unit = metric_target_unit(r.metric)
            out |= {"unit": unit, "better": target.label()}
        except GateError:
            out |= {"unit": "", "better": "unknown (metric not registered here)"}
    return out


def clean_json(value: Any) -> Any:
    """``value`` with non-finite floats as strings ("nan", "inf", "-inf"), so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def provenance_line(role: str, p: dict[str, Any]) -> str:
    """One Markdown list item naming what identifies a run (:func:`qa.gate.data.run_provenance`); every stored
    value escaped (a code span for ids, hashes and the settings' JSON)."""
    settings = settings_json(p.get("decoder_settings"))
    seeds = ",".join(str(s) for s in p.get("seeds") or [])
    return (f"- {md(role)} {md_code(p.get('run_id', ''))} ({md(p.get('status') or 'unknown status')}, started "
            f"{md(p.get('started_at') or 'unknown')}, device {md(p.get('device') or 'unknown')}): "
            f"commit {md_code(p.get('git_commit') or 'unknown')}, weights sha256 {md_code(p.get('weights_sha256') or 'none')}, "
            f"reference set {md(p.get('reference_set', ''))} sha256 {md_code(p.get('reference_set_sha256', ''))}, "
            f"seeds {md_code(seeds or 'none')}, decoder settings "
            + (md_code(settings) if settings is not None else "not recorded"))


def provenance_lines(outcome: GateOutcome) -> list[str]:
    """The provenance block: candidate, baseline run (when there is one), policy file name and sha256."""
    cand, base = outcome.provenance.get("candidate"), outcome.provenance.get("baseline")
    lines = ["**Provenance**", ""]
    lines += [provenance_line("candidate", cand)] if cand else []
    lines += [provenance_line(f"baseline ({base.get('kind', '')})", base)] if base else []
    name = PurePath(outcome.policy.source).name if outcome.policy.source else "policy"
    return [*lines, f"- policy {md_code(name)} sha256 {md_code(outcome.policy.sha256())}"]


def outcome_json(outcome: GateOutcome) -> str:
    """:func:`outcome_dict` as standard JSON (non-finite numbers as strings)."""
    return json.dumps(clean_json(outcome_dict(outcome)), indent=2, default=str, allow_nan=False)


def outcome_markdown(outcome: GateOutcome) -> str:
    """A heading with the verdict, the failed checks named, notes, then one table row per check."""
    failed = failed_checks(outcome.results)
    head = (f"### qa gate: {outcome.verdict.upper()} for {md_code(outcome.run.run_id)} ({md(outcome.run.decoder)})"
            + (" (blocks the release)" if outcome.blocks else ""))
    lines = [head, ""]
    if failed:
        lines.append("**Failed checks:** " + ", ".join(md(check_name(r)) for r in failed))
        lines.append("")
    for b in outcome.baselines:
        lines.append(f"- baseline {md(b.describe())}")
    if outcome.settings:
        lines.append(f"- settings vs {md(outcome.baselines[0].kind)}: {md(outcome.settings)}")
    lines += [f"- {md(n)}" for n in outcome.notes]
    lines += ["", "| check | verdict | candidate | baseline | worse by (+ = worse) [CI] | allowed | n | unit |",
              "|---|---|---|---|---|---|---|---|"]
    for r in sorted(outcome.results, key=lambda r: (not r.blocks, r.verdict == "skipped")):
        ci = f" [{_num(r.worse_by_ci[0])}, {_num(r.worse_by_ci[1])}]" if r.worse_by_ci else ""
        which = f" (worst image: {md(r.worst_case)})" if r.worst_case else ""
        lines.append(f"| {md(check_name(r))}{which} | {md(r.verdict)} | {_num(r.candidate_mean)} | "
                     f"{_num(r.baseline_mean)} | {_num(r.worse_by) if r.worse_by is not None else ''}{ci} | "
                     f"{_num(r.margin) if r.margin is not None else ''} | {r.n} | {md('' if r.kind == 'cases' else declared_unit(r.metric))} |")
    for r in [r for r in outcome.results if r.images]:  # every image, folded: never cut at the message's few
        lines += ["", f"<details><summary>{md(check_name(r))}: {len(r.images)} image(s) worse than allowed</summary>",
                  "", "| image | baseline | candidate | worse by | allowed |", "|---|---|---|---|---|"]
        lines += [f"| {md(im['case'])} | {_num(im['baseline'])} | {_num(im['candidate'])} | {_num(im['worse_by'])} | "
                  f"{_num(im['allowed'])} |" for im in r.images]
        lines += ["", "</details>"]
    reasons = [r for r in outcome.results if r.blocks or r.verdict == "skipped"]
    if reasons:
        lines += ["", "<details><summary>Why each check failed or was skipped</summary>", ""]
        lines += [f"- **{md(check_name(r))}** ({md(r.verdict)}): {md(r.message)}" for r in reasons]
        lines += ["", "</details>"]
    lines += ["", *provenance_lines(outcome)]
    lines += ["", f"gate id {md_code(outcome.gate_id)}, policy sha256 {md_code(outcome.policy.sha256()[:12])}"]
    return "\n".join(lines)
