"""Same numbers before and after a change: one ``qa run`` per source tree into its own DuckDB file, then a query
over the two files. A refactoring must leave every number and every stored image as it was.

    .venv/bin/python -m benchmarks.same_numbers --tree old=/path/to/main/checkout --tree new=.
    .venv/bin/python -m benchmarks.same_numbers --compare OLD.duckdb NEW.duckdb     # two files you already have

The run: a reference set of ``--tiles`` from ``reference_sets/default`` (built with ``qa refset build`` of the
first tree), ``qa run --decoder D ... --seeds 2`` with every default metric, each tree with
``PYTHONPATH=<tree>`` and this interpreter. Without ``--tree`` both sides are this tree (a determinism check).

Compared, per decoder (the latest finished run in each file; run ids and timestamps excepted):

* every ``results`` row, keyed by (decoder, case, seed, metric): value (bit for bit; NaN = NaN), status, detail,
  metric version;
* every stored image (thumbnails, maps), keyed by (decoder, case, seed, kind): the sha256 of its PNG bytes;
* the run rows: weights, encoder, reference set, seeds, number of cases; the identity sha256 and the decoder's
  settings are listed apart (settings that name a file inside the checkout, e.g. the embedded VAE's ``path``,
  differ between two checkouts, and so does the identity that hashes them);
* every ``set_results`` row, keyed by (decoder, metric): value, n, status, detail, version; the interval ends
  ``ci_low``/``ci_high`` are listed apart (a change of bootstrap method changes them, not the values).

Exit status 0 when results, images, run rows and set values are identical, else 1.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb


def _latest_runs(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, str]:
    rows = con.execute(f"select decoder, arg_max(run_id, started_at) from {db}.runs where status = 'finished' "
                       "group by decoder").fetchall()
    return {str(d): str(r) for d, r in rows}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _table(con: duckdb.DuckDBPyConnection, db: str, runs: dict[str, str], sql: str) -> dict[tuple, tuple]:
    """key -> values of ``sql`` (its first column the run id, then the key columns named by ``sql``)."""
    out: dict[tuple, tuple] = {}
    by_run = {r: d for d, r in runs.items()}
    for row in con.execute(sql.format(db=db), [list(by_run)]).fetchall():
        decoder = by_run[str(row[0])]
        out[(decoder, *row[1:-1])] = row[-1]
    return out


def compare(old: Path, new: Path, show: int = 10) -> int:
    con = duckdb.connect()
    con.execute(f"attach '{old}' as old (read_only)")
    con.execute(f"attach '{new}' as new (read_only)")
    runs = {db: _latest_runs(con, db) for db in ("old", "new")}
    if set(runs["old"]) != set(runs["new"]):
        print(f"decoders differ: {sorted(runs['old'])} vs {sorted(runs['new'])}")
        return 1
    print(f"decoders: {', '.join(sorted(runs['old']))}")
    checks = {
        "results": "select run_id, case_id, seed, metric, (value, status, detail, metric_version) from {db}.results "
                   "where run_id = any(?)",
        "runs": "select run_id, (weights_sha256, encoder_sha256, reference_set_sha256, seeds, n_cases, status) "
                "from {db}.runs where run_id = any(?)",
        "run identities": "select run_id, (identity_sha256, config_json->>'$.decoder_settings') from {db}.runs "
                          "where run_id = any(?)",
        "set values": "select run_id, metric, (value, n, status, detail, metric_version) from {db}.set_results "
                      "where run_id = any(?)",
        "set intervals": "select run_id, metric, (ci_low, ci_high) from {db}.set_results where run_id = any(?)",
        "images": "select run_id, case_id, seed, kind, png from {db}.images where run_id = any(?)",
    }
    failed = False
    for name, sql in checks.items():
        a, b = (_table(con, db, runs[db], sql) for db in ("old", "new"))
        if name == "images":
            a = {k: hashlib.sha256(v).hexdigest() for k, v in a.items()}
            b = {k: hashlib.sha256(v).hexdigest() for k, v in b.items()}
        keys = sorted(set(a) | set(b), key=str)
        differ = [k for k in keys if k not in a or k not in b or not all(
            _same(x, y) for x, y in zip(a[k] if isinstance(a[k], tuple) else (a[k],),
                                        b[k] if isinstance(b[k], tuple) else (b[k],), strict=True))]
        print(f"{name}: {len(keys)} compared, {len(differ)} differ")
        for k in differ[:show]:
            print(f"  {k}: old {a.get(k)!r} new {b.get(k)!r}")
        if name == "run identities" and differ:
            print("  (the identity hashes the decoder's settings, which name files by absolute path: two checkouts in "
                  "two folders differ there and nowhere else when the settings above differ only in the path)")
        elif name == "set intervals" and differ:
            ends = [abs(x - y) for k in differ if k in a and k in b for x, y in zip(a[k], b[k], strict=True)
                    if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
            print(f"  (largest difference of an interval end: {max(ends, default=0.0):.3g})")
        elif differ:
            failed = True
    print("same numbers" if not failed else "NUMBERS DIFFER")
    return 1 if failed else 0


RUNNER = "import sys; from qa.cli.main import main; sys.exit(main())"
DEFAULT = Path(__file__).resolve().parents[1] / "reference_sets" / "default"


def _qa(tree: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=tree, env=env, check=True)


def build_tiles(tree: Path, tiles: list[str], work: Path) -> Path:
    """A reference set of these default-set ids (images and captions), built by ``qa refset build``."""
    with (DEFAULT / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    folder = work / "tiles"
    folder.mkdir(parents=True, exist_ok=True)
    captions = {}
    for tile in tiles:
        shutil.copy(DEFAULT / rows[tile]["file"], folder / rows[tile]["file"])
        captions[rows[tile]["file"]] = rows[tile]["caption"]
    (work / "captions.json").write_text(json.dumps(captions, indent=1), encoding="utf-8")
    _qa(tree, "refset", "build", str(folder), "--captions", str(work / "captions.json"), "--out", str(work / "refset"))
    return work / "refset"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="a qa checkout (twice: old, then new; default: this tree twice)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="only compare two files")
    parser.add_argument("--decoders", default="bicubic,vae,pid")
    parser.add_argument("--tiles", default="astronaut-face,chelsea-nose,coffee-wood,rocket-tower")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="folder for the set and the files (default: temp)")
    parser.add_argument("--show", type=int, default=10, help="differences listed per table")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare, show=args.show)
    trees = [t.split("=", 1) for t in args.tree] or [["a", "."], ["b", "."]]
    if len(trees) != 2:
        parser.error("give --tree twice (old, then new), or not at all")
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-same-numbers-"))
    refset = build_tiles(Path(trees[0][1]).resolve(), args.tiles.split(","), work)
    dbs = []
    for label, path in trees:
        db = work / f"{label}.duckdb"
        decoders = [a for d in args.decoders.split(",") for a in ("--decoder", d)]
        _qa(Path(path).resolve(), "run", *decoders, "--reference-set", str(refset), "--seeds", str(args.seeds),
            "--db", str(db), "--no-progress")
        dbs.append(db)
    print(f"{trees[0][0]}: {dbs[0]}\n{trees[1][0]}: {dbs[1]}")
    return compare(*dbs, show=args.show)


if __name__ == "__main__":
    sys.exit(main())
