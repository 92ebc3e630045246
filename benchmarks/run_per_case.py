"""CPU cost per case of ``qa run``, decode excluded, for one or more source trees (same machine, same run).

For each tree: ``qa run --decoder D --seeds 2 --no-progress`` with every default metric and with ``--metrics
psnr``, each on the whole reference set (N cases) and on its first ``--small`` cases. Per case = (CPU of the N
case run - CPU of the small run) / (N - small): the slope, free of start-up, imports and model loading. Metrics
per case = that slope with every metric - the slope with psnr only (the decode, thumbnails and storage of a
case). CPU = user + system seconds of the child process (``resource.getrusage``), so a busy machine changes
wall time more than the CPU count. Runs are interleaved across trees and repeated; the minimum (``--stat min``)
or the median (``--stat median``, for a machine shared with other work) over the repeats is kept.

``--store cold`` (default): every run starts from an empty store, so nothing is found in its caches (the
references' OCR readings and features, their full-resolution tiles). ``--store warm``: a weekly run against the
same reference set: per tree, one untimed run of the whole set (every metric, one seed: another run identity, so
it is not reused) fills a store with that tree's own code, and every timed run starts from a copy of it.

    .venv/bin/python -m benchmarks.run_per_case --tree before=/path/to/old/checkout --tree now=. [--repeats 2]

A tree is any checkout of qa; it runs with ``PYTHONPATH=<tree>`` and this interpreter (the same packages).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNER = "import sys; from qa.cli.main import main; sys.exit(main())"


def cpu_of(cmd: list[str], env: dict[str, str], cwd: Path, clock: str = "cpu") -> float:
    """User + system CPU seconds (``clock="cpu"``) or wall seconds (``"wall"``: a GPU's work is not CPU time) of
    one child process running ``cmd`` (raises if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return wall if clock == "wall" else (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def reference_folder(tree: Path, reference_set: str) -> Path:
    """The folder of a set name under ``<tree>/reference_sets`` or of a path."""
    folder = Path(reference_set) if "/" in reference_set else Path("reference_sets") / reference_set
    return folder if folder.is_absolute() else tree / folder


def count_cases(folder: Path) -> int:
    """Rows of the folder's ``manifest.csv`` (one case each)."""
    with (folder / "manifest.csv").open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def subset(tree: Path, reference_set: str, k: int, dest: Path) -> Path:
    """A reference set of the first ``k`` manifest rows of the set (images copied), in ``dest``."""
    src = reference_folder(tree, reference_set)
    dest.mkdir(parents=True, exist_ok=True)
    with (src / "manifest.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for _, r in zip(range(k), reader, strict=False)]
        fields = reader.fieldnames or []
    with (dest / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        shutil.copy2(src / r["file"], dest / r["file"])
    return dest


def warm_store(tmp: Path, name: str) -> Path:
    """The store a tree's warm runs start from (filled once per tree)."""
    return tmp / f"{name}-warm.duckdb"


def copy_store(src: Path, dest: Path) -> None:
    """A copy of a closed DuckDB file (and its write-ahead log, when one was left)."""
    shutil.copy2(src, dest)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copy2(wal, dest.with_name(dest.name + ".wal"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a qa checkout (repeatable)")
    ap.add_argument("--decoder", default="bicubic")
    ap.add_argument("--reference-set", default="default", help="a set name under reference_sets/ or a path")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--small", type=int, default=8, help="cases of the small run (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the runs (default 1)")
    ap.add_argument("--stat", choices=("min", "median"), default="min", help="statistic over the repeats")
    ap.add_argument("--device", default="cpu", help="qa run --device (default cpu)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="CPU seconds, or wall seconds (GPU)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed runs of the small set per tree first (one-off kernel compilation; default 1)")
    ap.add_argument("--store", choices=("cold", "warm"), default="cold",
                    help="cold: each run's store starts empty; warm: from a copy of one filled by an earlier run of "
                         "the same set with the same tree (see above)")
    ap.add_argument("--must-beat", type=float, default=None,
                    help="exit 1 when the last tree's metrics per case exceed this many seconds")
    args = ap.parse_args(argv)
    pick = min if args.stat == "min" else statistics.median
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.tree)]
    cpus: dict[tuple[str, str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    unit = "CPU s" if args.clock == "cpu" else "wall s"
    with tempfile.TemporaryDirectory() as tmp:
        for name, tree in trees:
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
            small = subset(tree, args.reference_set, args.small, Path(tmp) / f"{name}-small")
            for w in range(args.warmup):
                cmd = [sys.executable, "-c", RUNNER, "run", "--decoder", args.decoder, "--seeds", "2", "--no-progress",
                       "--device", args.device, "--reference-set", str(small), "--db", str(Path(tmp) / f"w{w}.duckdb")]
                print(f"warm-up {w + 1}: {name}: {cpu_of(cmd, env, tree, args.clock):.2f} {unit}", flush=True)
            if args.store == "warm":
                cmd = [sys.executable, "-c", RUNNER, "run", "--decoder", args.decoder, "--seeds", "1", "--no-progress",
                       "--device", args.device, "--reference-set", str(reference_folder(tree, args.reference_set)),
                       "--db", str(warm_store(Path(tmp), name))]
                print(f"store filled: {name}: {cpu_of(cmd, env, tree, args.clock):.2f} {unit}", flush=True)
        for rep in range(args.repeats):
            for name, tree in trees:
                sets = {"whole": reference_folder(tree, args.reference_set),
                        "small": subset(tree, args.reference_set, args.small, Path(tmp) / f"{name}-small")}
                env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
                for size, folder in sets.items():
                    counts[(name, size)] = count_cases(folder)
                    for label, extra in (("all", []), ("psnr", ["--metrics", "psnr"])):
                        db = Path(tmp) / f"{name}-{size}-{label}-{rep}.duckdb"
                        if args.store == "warm":
                            copy_store(warm_store(Path(tmp), name), db)
                        cmd = [sys.executable, "-c", RUNNER, "run", "--decoder", args.decoder, "--seeds", "2",
                               "--no-progress", "--device", args.device, "--reference-set", str(folder),
                               "--db", str(db), *extra]
                        cpu = cpu_of(cmd, env, tree, args.clock)
                        key = (name, size, label)
                        cpus.setdefault(key, []).append(cpu)
                        print(f"repeat {rep + 1}: {name} {size} ({counts[(name, size)]} cases) {label}: "
                              f"{cpu:.2f} {unit}", flush=True)
    best = {key: float(pick(values)) for key, values in cpus.items()}
    print(f"\n{args.stat} over {args.repeats} repeats, device {args.device}, {args.threads} threads, "
          f"{args.store} store")
    print(f"\n| tree | all metrics: whole / small {unit} | psnr only: whole / small {unit} | per case all / psnr "
          f"| metrics per case ({unit}) |\n|---|---|---|---|---|")
    per: dict[str, float] = {}
    for name, _ in trees:
        n = counts[(name, "whole")] - counts[(name, "small")]
        slope = {lab: (best[(name, "whole", lab)] - best[(name, "small", lab)]) / n for lab in ("all", "psnr")}
        per[name] = slope["all"] - slope["psnr"]
        print(f"| {name} | {best[(name, 'whole', 'all')]:.2f} / {best[(name, 'small', 'all')]:.2f} | "
              f"{best[(name, 'whole', 'psnr')]:.2f} / {best[(name, 'small', 'psnr')]:.2f} | "
              f"{slope['all']:.3f} / {slope['psnr']:.3f} | {per[name]:.3f} |")
    first = trees[0][0]
    for name, _ in trees[1:]:
        print(f"{first} / {name}: {per[first] / per[name]:.2f}x")
    last = trees[-1][0]
    if args.must_beat is not None:
        ok = per[last] <= args.must_beat
        print(f"{last}: metrics per case {per[last]:.3f} {unit} {'<=' if ok else '>'} {args.must_beat} "
              f"({'beaten' if ok else 'NOT beaten'})")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
