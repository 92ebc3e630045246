"""Handlers of the ``qa`` subcommands: thin glue from parsed options to the ``qa`` package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qa.cli.run_options import metric_names as _metric_names
from qa.cli.run_options import parse_settings
from qa.errors import QAError, did_you_mean
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.results import failure_summary


def _store(args: argparse.Namespace, existing: bool = False) -> Store:
    """The store of ``--db`` (``$QA_DB``, else the default). ``existing``: a command that reads runs refuses a
    database that does not exist (a mistyped --db would otherwise create an empty one and report "no runs")."""
    store = Store(getattr(args, "db", None))
    if existing and not store.exists():
        raise QAError(f"no database at {store.path}", "check --db / $QA_DB, or make runs first (`qa run`, `qa demo`)")
    return store


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(" ".join(str(r[i]).split())) for r in [header, *rows]) for i in range(len(header) - 1)] + [0]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(" ".join(str(c).split()).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _check_suffix(out: Path, *suffixes: str) -> str:
    """``out``'s suffix (lower case); QAError (exit 2) unless it is one of ``suffixes``, before anything runs."""
    suffix = out.suffix.lower()
    if suffix not in suffixes:
        raise QAError(f"--out {out}: the file must end in {' or '.join(suffixes)}")
    return suffix


def _known_decoders(store: Store, names: list[str]) -> None:
    """QAError (exit 2) when a named decoder has no run in ``store``, naming the decoders that have runs."""
    have = store_runs.decoder_names(store) if store.exists() else []
    absent = [n for n in dict.fromkeys(names) if n not in have]
    if absent:
        close = [hint for n in absent if (hint := did_you_mean(n, have))]
        raise QAError(f"no run of decoder{'s' if len(absent) > 1 else ''} {', '.join(repr(n) for n in absent)} in "
                      f"{store.path}; decoders with runs there: {', '.join(have) or 'none'}",
                      "; ".join([*close, "check the name and --db, or run it first (`qa run --decoder NAME`)"]))


def _warn(line: str) -> None:
    print(f"qa run: warning: {line}", file=sys.stderr) if line else None


def _seeds(n: int) -> list[int]:
    from qa.engine.identity import MAX_SEEDS

    if not 1 <= n <= MAX_SEEDS:
        raise QAError(f"--seeds {n}: a run decodes 1 to {MAX_SEEDS} seeds", f"pass --seeds N with 1 <= N <= {MAX_SEEDS}")
    return list(range(n))


def cmd_run(args: argparse.Namespace) -> int:
    from qa.engine.run import RunConfig, RunEngine

    seeds = _seeds(args.seeds)
    store = _store(args)
    engine = RunEngine(store)
    if args.resume == "latest":  # the latest run (of --decoder): usually the one just interrupted
        from qa.gate.data import load_run

        args.resume = load_run(store, "latest", args.decoder[0] if args.decoder else None).run_id
    if args.resume:  # the run's own options (a differing one is refused) and what the resume loses, said
        from qa.cli.resume_run import resume_command

        return resume_command(args, store)
    if not args.decoder:
        raise QAError("no decoder given", "pass --decoder NAME (see `qa decoders`), or --resume RUN_ID")
    metrics = _metric_names(args.metrics)
    overrides = parse_settings(args.settings)
    if overrides and args.engine == "ray":
        raise QAError("--set is not supported with --engine ray", "put the settings in qa.toml ([decoders.NAME])")
    failed = False
    for name in args.decoder:
        config = RunConfig(decoder=name, reference_set=args.reference_set, seeds=seeds,
                           device=args.device, batch_size=args.batch_size, shard_size=args.shard_size,
                           metrics=metrics, progress=not args.no_progress, settings=overrides)
        try:
            _print_settings(name, args.device, overrides)
            if args.engine == "ray":
                from qa.engine import ray_engine

                run_id = ray_engine.start(store, config, address=args.address)
            else:
                run_id = engine.start(config)
        except QAError as exc:
            print(f"qa run: error: {name}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(run_id, flush=True)
        _warn(failure_summary(store, run_id))
    return 2 if failed else 0


def _print_settings(name: str, device: str, overrides: dict[str, Any]) -> None:
    """The settings decoder ``name`` runs with (on stderr: stdout stays one run id a line)."""
    from qa.decoders.factory import effective_settings, make_decoder, settings_text

    decoder = make_decoder(name, device, **overrides)  # bad keys or types: one line naming them, exit 2
    print(f"{name}: settings {settings_text(effective_settings(decoder, overrides))}", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from qa.demo import run_demo

    _seeds(args.seeds)
    return run_demo(db=args.db, out=args.out, decoders=args.decoder, seeds=args.seeds)


def cmd_score(args: argparse.Namespace) -> int:
    from qa import score
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    summary = score.score_folders(reference=args.reference, candidates=args.candidate, out=args.out,
                                  maps=args.maps, metrics=metrics, encoder=args.encoder)
    print(summary)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from qa.gate import cli as gate
    return int(gate.run_gate_command(_store(args, existing=True), run=args.run, baseline=args.baseline, policy=args.policy,
                                     decoder=args.decoder, fmt=args.fmt, trusted=args.trusted_keys))


def cmd_diff(args: argparse.Namespace) -> int:
    from qa.gate.data import load_run
    from qa.gate.diff import diff_output, diff_runs, pairing_note

    metrics = _metric_names(args.metrics)
    store = _store(args, existing=True)
    a, b = load_run(store, args.run_a, args.decoder), load_run(store, args.run_b, args.decoder)
    with store.snapshot() as db:
        print(diff_output(a, b, diff_runs(db, a, b, metrics), args.fmt, pairing_note(db, a, b)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from qa.cli.export_run import export_run

    _check_suffix(args.out, ".parquet", ".csv")
    print(export_run(_store(args, existing=True), args.run, args.decoder, args.out))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from qa.gate import baseline_file

    if args.action == "verify":
        if args.file is None:
            raise QAError("qa baseline verify needs the FILE", "qa baseline verify release/pid-baseline.parquet")
        print("\n".join(baseline_file.file_summary(args.file, args.trusted_keys)))
        return 0
    if not (args.decoder and args.out):
        raise QAError("qa baseline export needs --decoder NAME and --out FILE")
    _check_suffix(args.out, ".parquet")
    print(baseline_file.export_baseline(_store(args, existing=True), args.decoder, args.out, args.trusted_keys,
                                        reference_set=args.reference_set, thumbnails=args.thumbnails))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from qa.report import build as report

    _check_suffix(args.out, ".html")
    store = _store(args, existing=True)
    if args.decoder:
        _known_decoders(store, args.decoder)
    path = report.write_report(store, out=args.out, weekly=args.weekly, since=args.since,
                               decoders=args.decoder, png_dir=args.png, trusted=args.trusted_keys)
    print(f"{path}" + ("\n" + note if (note := report.linked_crops_note(path)) else ""))
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    from qa.gate import signoff
    if args.action == "keygen":
        from qa.gate.signing import generate_key

        if not (args.key and args.reviewer):
            raise QAError("qa signoff keygen needs --key PATH and --reviewer NAME")
        path, line = generate_key(args.key, args.reviewer)
        print(f"wrote {path} (private: keep it to yourself) and {path}.pub")
        print(f"add this line to the trusted-keys file (reviewed like code):\n{line}")
        return 0
    store = _store(args, existing=True)
    if args.action == "verify":
        return _verify(signoff, store, args)
    if args.action in ("list", "show"):
        return _print_signoffs(signoff, store, args)
    if not (args.run and args.decision):
        raise QAError("qa signoff needs --run and --decision (and your --key)",
                      "or `qa signoff list`, `qa signoff show --seq N`, `qa signoff verify`")
    seq = signoff.record_signoff(store, run_id=args.run, reviewer=args.reviewer, decision=args.decision,
                                 note=args.note, override=args.override, key=args.key, trusted=args.trusted_keys,
                                 policy=args.policy, decoder=args.decoder)
    row = signoff.signoff_rows(store, seq=seq)[0]
    print(f"recorded: sign-off seq {seq}, {args.decision} of {row.run_id} (evidence sha256 {row.evidence_sha256})")
    print(f"chain head: {row.hash}")
    return 0


def _verify(signoff: Any, store: Store, args: argparse.Namespace) -> int:
    """`qa signoff verify`: every finding, the full head, and --expect-head. Exit 0 intact, 1 findings."""
    check, evidence = signoff.chain_report(store, args.trusted_keys)
    for line in check.broken + evidence:
        print(line)
    by_seq = {r.seq: r for r in check.rows}
    for seq, why in sorted(check.not_counting.items()):
        print(f"{check.where(by_seq[seq])} does not count: {why}" if seq in by_seq else why)
    for note in check.notes:
        print(f"note: {note}")
    head = str(check.head.get("hash") or "")
    print(f"{len(check.rows)} sign-off(s); head seq {check.head.get('seq', 0)}, hash {head or '-'}")
    bad = len(check.broken) + len(evidence) + len(check.not_counting)
    if args.expect_head is not None and args.expect_head.strip() != head:
        print(f"head {head or '-'} is not the expected {args.expect_head.strip()}: the chain was rolled back, "
              "extended or replaced since the expected head was recorded")
        bad += 1
    if bad:
        print(f"{bad} problem(s) in the sign-off chain")
        return 1
    print("sign-off chain intact; every approval's evidence verifies")
    return 0


def _print_signoffs(signoff: Any, store: Any, args: argparse.Namespace) -> int:
    """`qa signoff list [--run ID]` (one line a sign-off) and `qa signoff show --seq N` (every stored field)."""
    if args.action == "show":
        if args.seq is None:
            raise QAError("qa signoff show needs --seq N", "`qa signoff list` shows the sequence numbers")
        rows = signoff.signoff_rows(store, seq=args.seq)
        if not rows:
            raise QAError(f"no sign-off with seq {args.seq}", "`qa signoff list` shows the sequence numbers")
        from dataclasses import asdict

        for name, value in asdict(rows[0]).items():
            print(f"{name.replace('_', ' '):>20}: {'' if value is None else value}")
        print("(as stored; `qa signoff verify --trusted-keys FILE` checks signatures, evidence and the chain)")
        return 0
    if args.run == "latest":
        from qa.gate.data import load_run

        args.run = load_run(store, "latest", args.decoder).run_id
    rows = signoff.signoff_rows(store, run_id=args.run)
    if not rows:
        print("no sign-offs" + (f" of run {args.run}" if args.run else ""))
        return 0
    print(_table([[str(r.seq), r.run_id, r.reviewer, r.decision + (" (override)" if r.override else ""),
                   str(r.signed_at)[:19], r.gate_id or "-", " ".join(r.note.split())[:60]] for r in rows],
                 ["seq", "run", "reviewer", "decision", "signed at", "gate", "note"]))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    store = _store(args, existing=True)
    fmt = getattr(args, "fmt", "text")
    report = getattr(args, "report", None)
    if args.decoder:
        _known_decoders(store, [args.decoder])
    from qa.gate import status

    rows = [(r.run_id, r.decoder, r.backend, r.status, r.started_at, r.n_cases)
            for r in store_runs.recent_runs(store, args.decoder or None, limit=status.RUNS_LISTED)]
    if not rows and fmt == "text":
        print("no runs")
        return 0
    if fmt == "text":
        print(_table([[str(c) for c in r] for r in rows], ["run", "decoder", "backend", "status", "started", "cases"]))
        if (left := store_runs.count_runs(store, args.decoder or None) - len(rows)) > 0:
            print(f"... and {left} older run(s) not listed (the newest {len(rows)} are): `qa report` shows every run")

    print(status.status_output(store, args.decoder, fmt, report, getattr(args, "trusted_keys", None)))
    return 0


def cmd_decoders(args: argparse.Namespace) -> int:
    from qa.decoders.factory import effective_settings, list_decoders, make_decoder, settings_text

    rows, settings = [], []
    for info in list_decoders():
        rows.append([info.name, info.track, "+".join(info.inputs), "yes" if info.stochastic else "no",
                     f"x{info.scale}", f"{info.family}/{info.backend}",
                     "available" if info.available else f"unavailable: {info.reason}"])
        try:
            settings.append(f"  {info.name}: {settings_text(effective_settings(make_decoder(info.name)))}")
        except Exception as exc:  # noqa: BLE001 - a bad entry is listed unavailable above with the reason
            settings.append(f"  {info.name}: cannot be built ({type(exc).__name__})")
    print(_table(rows, ["decoder", "track", "inputs", "stochastic", "scale", "family/backend", "availability"]))
    print("\neffective settings (where each comes from; `qa run --set KEY=VALUE` replaces one for a run):")
    print("\n".join(settings))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from qa.metrics.catalog import METRICS
    from qa.metrics.declarations import declaration

    rows = []
    aliases: dict[str, list[str]] = {}
    for alias, canonical in METRICS.aliases().items():
        aliases.setdefault(canonical, []).append(alias)
    for name in METRICS.names():
        try:
            d = declaration(name)
            reason = METRICS.create(name).unavailable_reason()  # availability needs the metric itself
        except Exception as exc:  # noqa: BLE001 - listing must show every entry
            rows.append([name, "?", "?", "?", "?", "?", "?", f"broken: {exc}"])
            continue
        shown = name + "".join(f" (alias {a})" for a in sorted(aliases.get(name, [])))
        unit = d.unit if len(d.unit) <= 32 else d.unit[:d.unit.find(":")] if ":" in d.unit else d.unit[:31] + "…"
        rows.append([shown, d.target.label(), f"[{d.value_range[0]}, {d.value_range[1]}]", unit or "-",
                     d.level, ",".join(d.needs) or "-", ",".join(d.weights) or "-",
                     "available" if not reason else f"missing: {reason}"])
    print(_table(rows, ["metric", "better", "range", "unit", "level", "needs", "weights", "availability"]))
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from qa import weights
    if args.action in ("import", "fetch") and not args.target:
        raise QAError(f"qa weights {args.action} needs a {'PATH' if args.action == 'import' else 'NAME'}",
                      "see `qa weights list` for the known names")
    if args.action == "list":
        return int(weights.cli_list())
    if args.action == "verify":
        return int(weights.cli_verify())
    if args.action == "import":
        return int(weights.cli_import(args.target))
    return int(weights.cli_fetch(args.target))


def cmd_refset(args: argparse.Namespace) -> int:
    from qa.refset import build
    result = build.build_reference_set(args.folder, captions=args.captions, out=args.out)
    print(result.summary())
    return 0 if result.ok else 2


