"""What a CI job needs from a ``pytest suites/`` session, without pytest: usage problems with ``--decoder`` (empty,
missing, unknown), the line saying which run was reused or made, the session's gate as JUnit properties and as
the Markdown of ``--gate-summary`` (the step summary renders the gate this session decided, never ``latest``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.errors import UnknownNameError

if TYPE_CHECKING:
    from qa.gate.evaluate import GateOutcome
    from qa.session.suite import RunHandle, SuiteSession

#: the heading a summary starts with before the session decided anything (a killed job leaves it)
UNDECIDED = "### qa gate: NOT DECIDED"


@dataclass
class StoredGate:
    """One gate row this session stored: its outcome (as ``qa gate`` would print it) and whether it is whole."""

    outcome: GateOutcome
    complete: bool


def known_decoders() -> list[str]:
    """Every decoder name ``--decoder`` accepts here: the catalogue's and the configured ones."""
    from qa.decoders.catalog import DECODERS
    from qa.decoders.factory import load_decoder_configs

    return sorted(set(DECODERS.names()) | set(load_decoder_configs()))


def decoder_problem(decoder: str | None, session: SuiteSession | None) -> str:
    """Why ``--decoder`` cannot name the candidate of a release-suite session ('' when it can): not given, given
    empty (an unset CI variable), or unknown. A decoder that is known but cannot be built or run is no usage
    problem: its tests fail with the reason."""
    if decoder is None:
        return (f"the release suites need --decoder NAME (known: {', '.join(known_decoders())}); without it "
                "nothing is gated")
    if not decoder.strip():
        return (f"--decoder is empty (known: {', '.join(known_decoders())}): pass --decoder NAME; in CI the "
                "variable it is given (e.g. $QA_DECODER) is unset or empty in this job")
    if session is not None:
        try:
            session.decoder_track()
        except UnknownNameError as exc:
            return f"--decoder {decoder!r}: {exc}"
        except Exception:  # noqa: BLE001 - a known decoder that cannot be built: its tests fail with the reason
            return ""
    return ""


def run_line(run: RunHandle, seconds: float) -> str:
    """What the session says once it has the candidate: the run made or reused (and how to force a new one)."""
    if not run.ok:
        return f"no run: {run.error}"
    if not run.reused:
        return f"made run {run.run_id} in {seconds:.0f} s"
    when = f"{run.info.started_at:%Y-%m-%d %H:%M}" if run.info is not None and run.info.started_at else "earlier"
    return (f"reused run {run.run_id} in {seconds:.0f} s (stored {when}: same decoder, weights, settings, reference "
            "set, seeds and code; no failed case); pass --fresh-run to decode afresh")


def gate_properties(gates: list[StoredGate]) -> list[tuple[str, str]]:
    """JUnit properties naming every gate the session stored (which run it judged, under which policy)."""
    props: list[tuple[str, str]] = []
    for g in gates:
        o = g.outcome
        props += [("qa.gate_id", o.gate_id), ("qa.gate.run_id", o.run.run_id), ("qa.gate.verdict", o.verdict),
                  ("qa.gate.complete", str(g.complete)), ("qa.gate.policy_sha256", o.policy.sha256())]
    return props


def blocking_problem(gates: list[StoredGate]) -> str:
    """Why the session's gate blocks the release ('' when no stored gate does): the suites' own tests may have
    been marked xfail or had their assertion caught in a pull request; the gate the session stored still speaks."""
    return "\n".join(f"gate {g.outcome.gate_id} of run {g.outcome.run.run_id} ({g.outcome.run.decoder}) is "
                     f"{g.outcome.verdict}: it blocks the release ({', '.join(r.title for r in g.outcome.results if r.blocks)})"
                     for g in gates if g.outcome.blocks)


def gate_problem(gates: list[StoredGate], run_errors: list[str]) -> str:
    """Why the session's gate decides nothing ('' when every stored gate made every check of its policy)."""
    partial = [g.outcome for g in gates if not g.complete]
    if partial:
        return "\n".join(f"partial gate {o.gate_id} of run {o.run.run_id} ({o.run.decoder}): not every check of "
                         f"{o.policy.source} ran (-k, -m, --deselect, --lf or one file of the suites); it decides "
                         "nothing and unlocks no approval: run the suites whole" for o in partial)
    if not gates:
        return "no gate was decided: " + ("; ".join(run_errors) if run_errors else
                                          "no check ran on a run of the candidate (every release test was "
                                          "deselected, or failed before it had a run: see the failures)")
    return ""


def summary_markdown(gates: list[StoredGate], problem: str, decoder: str | None) -> str:
    """The step summary: every stored gate as ``qa gate --format markdown`` writes it (a partial one says so in
    its heading), or why there is none."""
    from qa.gate.formats import md, outcome_markdown

    parts: list[str] = []
    for g in gates:
        text = outcome_markdown(g.outcome)
        if not g.complete:
            head = f"### qa gate: {g.outcome.verdict.upper()}"
            text = text.replace(head, f"### qa gate: PARTIAL ({g.outcome.verdict} on the checks that ran, decides "
                                      "nothing)", 1)
        parts.append(text)
    if not gates:
        parts.append(f"{UNDECIDED} for decoder {md(decoder or '(none)')}")
    if problem:
        parts.append("\n".join(f"- {md(line)}" for line in problem.splitlines()))
    return "\n\n".join(parts) + "\n"
