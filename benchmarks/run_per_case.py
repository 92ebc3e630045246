"""CPU cost per case of ``qa run``, decode excluded, for one or more source trees (same machine, same run).

For each tree: ``qa run --decoder D --seeds 2 --no-progress`` with every default metric and with ``--metrics
psnr``, each on the whole reference set (N cases) and on its first ``--small`` cases. Per case = (CPU of the N
case run - CPU of the small run) / (N - small): the slope, free of start-up, imports and model loading. Metrics
per case = that slope with every metric - the slope with psnr only (the decode, thumbnails and storage of a
case). CPU = user + system seconds of the child process (``resource.getrusage``), so a busy machine changes
wall time more than the CPU count. Runs are interleaved across trees and repeated; the minimum (``--stat min``)
or the median (``--stat median``, for a machine shared with other work) over the repeats is kept.

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
from pathlib import Path

RUNNER = "import sys; from qa.cli.main import main; sys.exit(main())"


def cpu_of(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """User + system CPU seconds of one child process running ``cmd`` (raises if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a qa checkout (repeatable)")
    ap.add_argument("--decoder", default="bicubic")
    ap.add_argument("--reference-set", default="default", help="a set name under reference_sets/ or a path")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--small", type=int, default=8, help="cases of the small run (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the runs (default 1)")
    ap.add_argument("--stat", choices=("min", "median"), default="min", help="statistic over the repeats")
    args = ap.parse_args(argv)
    pick = min if args.stat == "min" else statistics.median
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.tree)]
    cpus: dict[tuple[str, str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name, tree in trees:
                sets = {"whole": reference_folder(tree, args.reference_set),
                        "small": subset(tree, args.reference_set, args.small, Path(tmp) / f"{name}-small")}
                env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
                for size, folder in sets.items():
                    counts[(name, size)] = count_cases(folder)
                    for label, extra in (("all", []), ("psnr", ["--metrics", "psnr"])):
                        db = Path(tmp) / f"{name}-{size}-{label}-{rep}.duckdb"
                        cmd = [sys.executable, "-c", RUNNER, "run", "--decoder", args.decoder, "--seeds", "2",
                               "--no-progress", "--reference-set", str(folder), "--db", str(db), *extra]
                        cpu = cpu_of(cmd, env, tree)
                        key = (name, size, label)
                        cpus.setdefault(key, []).append(cpu)
                        print(f"repeat {rep + 1}: {name} {size} ({counts[(name, size)]} cases) {label}: "
                              f"{cpu:.2f} CPU s", flush=True)
    best = {key: float(pick(values)) for key, values in cpus.items()}
    print(f"\n{args.stat} over {args.repeats} repeats")
    print("\n| tree | all metrics: whole / small CPU s | psnr only: whole / small CPU s | per case all / psnr "
          "| metrics per case (CPU s) |\n|---|---|---|---|---|")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
