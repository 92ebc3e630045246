"""CPU cost per case of ``qa run``, decode excluded, for one or more source trees (same machine, same run).

For each tree: ``qa run --decoder D --seeds 2 --no-progress`` on the reference set, once with every default
metric and once with ``--metrics psnr`` (start-up, imports, decode, thumbnails and storage, which the first run
also pays). Metrics per case = (CPU of the full run - CPU of the psnr-only run) / number of cases, where CPU =
user + system seconds of the child process (``resource.getrusage``), so a busy machine changes wall time but
hardly the CPU count. Runs are interleaved across trees and repeated; the minimum over repeats is reported.

    .venv/bin/python -m benchmarks.run_per_case --tree before=/path/to/old/checkout --tree now=. [--repeats 2]

A tree is any checkout of qa; it runs with ``PYTHONPATH=<tree>`` and this interpreter (the same packages).
"""

from __future__ import annotations

import argparse
import os
import resource
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


def count_cases(tree: Path, reference_set: str) -> int:
    """Rows of the reference set's manifest (one case each)."""
    folder = Path(reference_set) if "/" in reference_set else tree / "reference_sets" / reference_set
    manifest = (folder if folder.is_absolute() else tree / folder) / "manifest.csv"
    with manifest.open() as f:
        return sum(1 for line in f if line.strip()) - 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a qa checkout (repeatable)")
    ap.add_argument("--decoder", default="bicubic")
    ap.add_argument("--reference-set", default="default", help="a set name under reference_sets/ or a path")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the runs (default 1)")
    args = ap.parse_args(argv)
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.tree)]
    best: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name, tree in trees:
                env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
                for label, extra in (("all", []), ("psnr", ["--metrics", "psnr"])):
                    db = Path(tmp) / f"{name}-{label}-{rep}.duckdb"
                    cmd = [sys.executable, "-c", RUNNER, "run", "--decoder", args.decoder, "--seeds", "2",
                           "--no-progress", "--reference-set", args.reference_set, "--db", str(db), *extra]
                    cpu = cpu_of(cmd, env, tree)
                    best[(name, label)] = min(cpu, best.get((name, label), float("inf")))
                    print(f"repeat {rep + 1}: {name} {label}: {cpu:.2f} CPU s", flush=True)
    print("\n| tree | all metrics CPU s | psnr only CPU s | cases | metrics per case (CPU s) |\n|---|---|---|---|---|")
    per: dict[str, float] = {}
    for name, tree in trees:
        n = count_cases(tree, args.reference_set)
        per[name] = (best[(name, "all")] - best[(name, "psnr")]) / n
        print(f"| {name} | {best[(name, 'all')]:.2f} | {best[(name, 'psnr')]:.2f} | {n} | {per[name]:.3f} |")
    first = trees[0][0]
    for name, _ in trees[1:]:
        print(f"{first} / {name}: {per[first] / per[name]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
