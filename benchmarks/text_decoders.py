"""The text metrics of real decoders on the text reference set: the table of docs/hallucination.md.

Run ``python -m benchmarks.text_decoders [--db text.duckdb] [--decoders identity,vae,...]``. It runs what a user
would type::

    qa run --decoder identity --decoder vae --decoder taef2 --decoder bicubic --decoder esrgan \\
      --decoder taef2+esrgan --reference-set text --seeds 1 --metrics psnr,text_cer,text_wer,text_invented --db DB

and prints, per run, the set means of ``psnr``, ``text_cer``, ``text_wer`` and ``text_invented`` with their 95%
bootstrap intervals as stored, and the tiles whose ``text_invented`` is above 0. A decoder that cannot run here
(weights absent) is said and left out; a missing metric is printed as its status, never as 0.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

DECODERS = ("identity", "vae", "taef2", "bicubic", "esrgan", "taef2+esrgan")
METRICS = ("psnr", "text_cer", "text_wer", "text_invented")


def _cell(value: float | None, low: float | None, high: float | None, status: str, digits: int) -> str:
    if status != "ok" or value is None:
        return status
    if math.isinf(value):
        return "inf"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None and not (math.isnan(low) or low == high == value):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def table(db: Path) -> list[str]:
    """The markdown table of every finished run in ``db`` (oldest first)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("select run_id, decoder, track, scale from runs where status = 'finished' "
                           "order by started_at").fetchall()
        lines = ["| decoder | track | psnr (dB) | text_cer | text_wer | text_invented | tiles with invented text |",
                 "|---|---|---|---|---|---|---|"]
        for run_id, decoder, track, scale in runs:
            cells = []
            for metric in METRICS:
                found = con.execute("select value, ci_low, ci_high, status from set_results where run_id = ? and "
                                    "metric = ?", [run_id, metric]).fetchone()
                cells.append(_cell(*found, 2 if metric == "psnr" else 3) if found else "absent")
            invented, tiles = con.execute(
                "select count(*) filter (where value > 0), count(*) from results where run_id = ? and metric = ? "
                "and status = 'ok'", [run_id, "text_invented"]).fetchone()
            name = f"{decoder} x{scale}" if scale and scale > 1 else decoder
            lines.append(f"| {name} | {track} | {' | '.join(cells)} | {invented}/{tiles} |")
        return lines
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="DuckDB file to run into (default: a temporary one)")
    parser.add_argument("--decoders", default=",".join(DECODERS), help="comma-separated decoder names")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "text.duckdb"
        cmd = [sys.executable, "-c", "from qa.cli.main import main; raise SystemExit(main())", "run",
               "--reference-set", "text", "--seeds", "1", "--metrics", ",".join(METRICS), "--db", str(db),
               "--no-progress"]
        for name in args.decoders.split(","):
            cmd += ["--decoder", name]
        done = subprocess.run(cmd, check=False)
        if done.returncode != 0:
            print(f"qa run exited {done.returncode}; the table shows the runs that finished", file=sys.stderr)
        print("\n".join(table(db)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
