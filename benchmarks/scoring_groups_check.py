"""What a GPU run does to the rows, checked on the CPU: every default metric with the GPU's scoring rules forced
(the shard one scoring group, the SSIM family, PSNR and LPIPS batched in ``prepare``) against the CPU's rules (a
case alone, a pair at a time), per decoder, on the first tiles of a reference set.

    PYTHONPATH=. .venv/bin/python -m benchmarks.scoring_groups_check --decoders bicubic,pid,vae,taef2

Exit status 1 when a row differs (status, detail, or a value by more than 1e-9 relative).
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from qa.engine import groups, shard
from qa.engine.run import RunConfig, RunEngine
from qa.metrics import batching, fidelity, perceptual
from qa.store import Store

Rows = dict[tuple[str, int, str], tuple[float | None, str, str]]


def _subset(src: Path, n: int, dst: Path) -> Path:
    """The first ``n`` items of the reference set ``src`` copied to ``dst`` with their manifest."""
    with open(src / "manifest.csv", newline="") as f:
        items = list(csv.DictReader(f))[:n]
    dst.mkdir(parents=True)
    with open(dst / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(items[0]))
        writer.writeheader()
        for it in items:
            shutil.copy(src / it["file"], dst / it["file"])
            writer.writerow(it)
    return dst


def _rows(db: Path, decoder: str, refset: Path) -> Rows:
    store = Store(db)
    run_id = RunEngine(store).start(RunConfig(decoder=decoder, reference_set=str(refset), seeds=[0, 1],
                                              progress=False))
    got = store.query("select case_id, seed, metric, value, status, detail from results where run_id = ?", [run_id])
    return {(c, s, m): (v, st, d) for c, s, m, v, st, d in got}


def _gpu_rules(on: bool) -> None:
    """Force (or restore) the GPU's scoring rules on this CPU."""
    shard.group_pixels = (lambda device: groups.DEVICE_GROUP_PIXELS) if on else groups.group_pixels  # type: ignore[assignment]
    for module in (fidelity, perceptual):
        module.batches_on = (lambda device: True) if on else batching.batches_on  # type: ignore[assignment]


def _differ(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return not (a == b or (math.isfinite(a) and abs(a - b) <= 1e-9 * max(1.0, abs(a))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decoders", default="bicubic,pid", help="comma-separated decoder names")
    ap.add_argument("--reference-set", default="reference_sets/default", help="a reference set folder")
    ap.add_argument("--tiles", type=int, default=4, help="how many of its first items")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-groups-"))
    refset = _subset(Path(args.reference_set), args.tiles, work / "set")
    bad = 0
    for dec in args.decoders.split(","):
        alone = _rows(work / f"alone-{dec}.duckdb", dec, refset)
        _gpu_rules(True)
        try:
            together = _rows(work / f"together-{dec}.duckdb", dec, refset)
        finally:
            _gpu_rules(False)
        differ = [k for k in alone.keys() | together.keys()
                  if k not in alone or k not in together or alone[k][1:] != together[k][1:]
                  or _differ(alone[k][0], together[k][0])]
        statuses = Counter(st for _, st, _ in alone.values())
        print(f"{dec}: {len(alone)} rows ({dict(statuses)}), {len(differ)} differ")
        for k in sorted(differ)[:10]:
            print("  ", k, alone.get(k), together.get(k))
        bad += len(differ)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
