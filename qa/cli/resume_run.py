"""``qa run --resume RUN_ID``: what a resume keeps, refuses and loses, said before it starts and after it ends.

A resumed run is the run that started: its decoder, reference set, seeds, metrics, decoder settings, device, batch
and shard sizes are fixed then. An option of those given with ``--resume`` is accepted when it equals the run's own
and is otherwise an error (exit 2) naming it; nothing given is silently dropped. A finished run is refused with
what a plain ``qa run`` really does (it starts a new run: only pytest suites reuse a finished one). A run whose
shards were partly committed before the resume has its set metrics (FID, KID, CLIP score, CMMD) stored
``missing``; the resume says so on stderr before it starts and, naming them and how to get them, after it ends.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from qa.cli.run_options import metric_names, parse_settings
from qa.errors import ManifestError, QAError
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs

#: the `qa run` options a run fixes when it starts: dest -> (the option, what of the run it names)
FIXED_OPTIONS = {
    "decoder": ("--decoder", "decoder"),
    "reference_set": ("--reference-set", "reference set"),
    "seeds": ("--seeds", "seeds"),
    "metrics": ("--metrics", "metrics"),
    "settings": ("--set", "decoder settings (--set)"),
    "device": ("--device", "device"),
    "batch_size": ("--batch-size", "batch size"),
    "shard_size": ("--shard-size", "shard size (its shard split is fixed)"),
}

#: what the stored reason of a set metric that a resume could not compute contains (qa.engine.run)
RESUMED_REASON = "resumed"


def resume_command(args: argparse.Namespace, store: Store) -> int:
    """Resume ``args.resume`` (an id) after :func:`check_resume`; says what the resume loses before and after."""
    from qa.engine.run import RunEngine
    from qa.store.results import failure_summary

    run_id = str(args.resume)
    cfg = check_resume(args, store, run_id)
    names = set_metric_names(cfg) if cfg is not None else []
    done = store_results.done_shards(store, run_id) if names else set()
    if names and done:
        print(f"qa run: note: {len(done)} of {len(cfg.get('shards') or []) if cfg else '?'} shard(s) of run {run_id} "
              f"were committed before this resume, so its set metric(s) {', '.join(names)} will be stored `missing` "
              "(a set metric needs every output of the run in one process; the per-image rows are complete). "
              f"For their values: {fresh_run_advice(cfg or {}, args)}", file=sys.stderr, flush=True)
    if args.engine == "ray":
        from qa.engine import ray_engine

        ray_engine.resume(store, run_id, address=args.address)
    else:  # the run's own device (an equal --device was accepted above; a different one refused)
        RunEngine(store).resume(run_id, device=None, progress=not args.no_progress)
    print(run_id)
    if line := failure_summary(store, run_id):
        print(f"qa run: warning: {line}", file=sys.stderr)
    if cfg is not None and (lost := lost_set_metrics(store, run_id, names)):
        print(f"qa run: warning: run {run_id} was resumed, so its set metric(s) {', '.join(m for m, _ in lost)} are "
              f"stored missing ({lost[0][1]}); a gate fails a policy that requires them and skips them where they are "
              f"optional. For their values: {fresh_run_advice(cfg, args)}", file=sys.stderr)
    return 0


def check_resume(args: argparse.Namespace, store: Store, run_id: str) -> dict[str, Any] | None:
    """The stored config of ``run_id`` once the resume is checked; None when there is no such run (the engine says
    so). QAError (exit 2) for a finished run, for an option of :data:`FIXED_OPTIONS` that differs from the run's,
    and for a reference set that cannot be found from here."""
    from qa.engine.lifecycle import resume_refusal  # the engine's rule, checked before anything loads

    row = store_runs.resume_row(store, run_id) if store.exists() else None
    if row is None:
        return None
    if refusal := resume_refusal(run_id, store, store_runs.state_of(store, run_id)):  # finished or approved
        raise refusal
    try:
        cfg = json.loads(row.config_json)
    except (TypeError, ValueError):
        return None  # the engine refuses it with its own reason
    if not isinstance(cfg, dict):
        return None
    stored_set = _stored_reference_set(cfg, run_id)
    given = set(getattr(args, "given_options", ())) | {d for d in ("decoder", "settings") if getattr(args, d, None)}
    differ = [text for dest in FIXED_OPTIONS if dest in given and (text := _differs(dest, args, cfg, stored_set))]
    if differ:
        raise QAError(f"--resume {run_id}: a resumed run keeps its own options, and these differ from them: "
                      + "; ".join(differ),
                      f"drop them to finish the run as it started (`qa run --resume {run_id}`), or start a new run "
                      "with them (the same command without --resume)")
    return cfg


def _stored_reference_set(cfg: dict[str, Any], run_id: str) -> Path:
    """The folder of the run's reference set as found from here; QAError naming the stored path and the fix."""
    from qa.refset.manifest import resolve_reference_set

    stored = str(cfg.get("reference_set") or "default")
    try:
        return resolve_reference_set(stored).resolve()
    except ManifestError:
        pass
    if Path(stored).is_absolute():
        raise QAError(f"run {run_id}'s reference set {stored} is gone (no manifest.csv there)",
                      f"restore the set at {stored} and resume again, or start a new run on the set where it is now "
                      "(`qa run --reference-set PATH ...`)")
    raise QAError(f"run {run_id}'s reference set {stored!r} is not found from {Path.cwd()}: the run stores it as it "
                  "was given when the run started, relative to the folder it was started in",
                  f"run `qa run --resume {run_id}` from that folder (where {stored!r} is the set); --reference-set "
                  "cannot point a resumed run at another path")


def _differs(dest: str, args: argparse.Namespace, cfg: dict[str, Any], stored_set: Path) -> str:
    """'' when option ``dest`` as given equals the run's own, else "OPTION VALUE (the run's: ITS OWN)"."""
    option, what = FIXED_OPTIONS[dest]
    stored = cfg.get(dest)
    if dest == "decoder":
        typed, same = " ".join(args.decoder), all(name == stored for name in args.decoder)
    elif dest == "reference_set":
        typed, same = str(args.reference_set), _same_set(str(args.reference_set), stored_set)
    elif dest == "seeds":
        wanted = list(range(int(args.seeds)))  # a deterministic decoder decodes the first two (effective_seeds)
        typed, same = str(args.seeds), (wanted if cfg.get("stochastic", True) else wanted[:2]) == stored
        stored = ", ".join(str(s) for s in stored or []) or "none recorded"
    elif dest == "metrics":
        from qa.metrics.catalog import METRICS

        names = metric_names(args.metrics) or METRICS.names()
        typed, same = str(args.metrics), isinstance(stored, list) and set(names) == set(stored)
        stored = ",".join(stored) if isinstance(stored, list) else "none recorded"
    elif dest == "settings":
        typed, same = " ".join(args.settings), parse_settings(args.settings) == stored
        if isinstance(stored, dict):
            stored = ", ".join(f"{k}={v!r}" for k, v in stored.items()) or "none"
        else:
            stored = "none recorded"
    else:
        typed, same = str(getattr(args, dest)), dest in cfg and getattr(args, dest) == stored
    if same:
        return ""
    return f"{option} {typed} (the run's {what}: {'default' if stored is None and dest == 'batch_size' else stored})"


def _same_set(given: str, stored_set: Path) -> bool:
    """Whether the reference set ``given`` names is the run's folder ``stored_set``, as found from here."""
    from qa.refset.manifest import resolve_reference_set

    try:
        return resolve_reference_set(given).resolve() == stored_set
    except ManifestError:
        return False


def set_metric_names(cfg: dict[str, Any]) -> list[str]:
    """The run's metrics that are set metrics (FID, KID, CLIP score, CMMD), in the run's order."""
    from qa.metrics.declarations import declaration

    names = []
    for name in cfg.get("metrics") or []:
        try:
            if declaration(str(name)).level == "set":
                names.append(str(name))
        except QAError:  # no longer registered: the engine refuses the resume with the reason
            continue
    return names


def lost_set_metrics(store: Store, run_id: str, names: list[str]) -> list[tuple[str, str]]:
    """(metric, stored reason) of each of ``names`` that the resume stored without a value because it resumed."""
    rows = {name: store_results.set_result(store, run_id, name) for name in names}
    return [(name, row.detail) for name, row in rows.items()
            if row is not None and row.status != "ok" and RESUMED_REASON in row.detail]


def fresh_run_advice(cfg: dict[str, Any], args: argparse.Namespace) -> str:
    """How to get a resumed run's set metrics: a fresh run with its inputs (the `qa run` command), or pytest's."""
    parts = ["qa", "run", "--decoder", str(cfg.get("decoder", "NAME")),
             "--reference-set", str(cfg.get("reference_set") or "default"),
             "--seeds", str(max(1, len(cfg.get("seeds") or [0]))), "--metrics", ",".join(cfg.get("metrics") or [])]
    settings = cfg.get("settings") or {}
    plain = all(isinstance(v, bool | int | float | str) for v in settings.values())
    for key, value in settings.items() if plain else ():
        parts += ["--set", f"{key}={_toml(value)}"]
    if cfg.get("device") not in (None, "cpu"):
        parts += ["--device", str(cfg["device"])]
    if getattr(args, "db", None) is not None:
        parts += ["--db", str(args.db)]
    more = "" if plain else " plus the run's decoder settings as --set KEY=VALUE"
    return (f"a fresh run with the same inputs, `{shlex.join(parts)}`{more} (in pytest: `pytest suites/ "
            f"--decoder={cfg.get('decoder', 'NAME')} --fresh-run`)")


def _toml(value: bool | int | float | str) -> str:
    """A setting's value as `--set KEY=VALUE` reads it (a TOML value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)
