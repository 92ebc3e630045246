"""Wall time of the local engine against the Ray engine with 1 and 2 workers, and Ray's overhead per shard.

Two workloads over the same store, each run by the three engines in turn:

- ``suite``: the shipped default reference set (32 photos, 256x256) with ``bicubic`` and PSNR + SSIM, shards of
  ``--shard-size`` cases: what a small real run costs;
- ``overhead``: ``identity`` with PSNR only on ``--tiny`` tiles of 16x16 pixels, one case per shard, so a
  shard's own work is almost nothing and the time per shard is the engine's overhead.

For every engine, ``ms/shard`` is the steady state (mean time between consecutive commits) and ``startup``
the time to the first commit minus one steady shard. Ray's own overhead per shard is measured directly: an
empty shard sent to one actor and awaited, 100 times in a row. ``ray.init`` of the local cluster is timed
separately (paid once per ``qa run``). Nothing here is a test: the numbers depend on the machine and its load,
which are printed with them.

    .venv/bin/python benchmarks/ray_overhead.py [--shard-size 4] [--tiny 48] [--write-docs]

``--write-docs`` replaces the "Ray" section of docs/benchmarks.md with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(ROOT))


def tiny_refset(root: Path, n: int) -> Path:
    """``n`` 16x16 tiles of scikit-image's astronaut plus a manifest."""
    import skimage.data

    from qa.hashing import sha256_file
    from qa.refset.manifest import write_manifest

    root.mkdir(parents=True, exist_ok=True)
    img = skimage.data.astronaut()
    items = []
    for i in range(n):
        y, x = 16 * (i // 24), 16 * (i % 24)
        path = root / f"t{i:03d}.png"
        Image.fromarray(np.ascontiguousarray(img[y : y + 16, x : x + 16])).save(path)
        items.append({"id": f"t{i:03d}", "file": path.name, "caption": "tile", "licence": "BSD-3-Clause",
                      "source": "skimage.data.astronaut", "sha256": sha256_file(path)})
    write_manifest(root, items)
    return root


def timed(run) -> tuple[float, list[float]]:  # noqa: ANN001
    """Call ``run(on_shard)``; returns total seconds and the time of each commit since the call."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    run(lambda _i: stamps.append(time.perf_counter() - t0))
    return time.perf_counter() - t0, stamps


def measure(store, config_factory, workers: int | None) -> dict[str, float]:  # noqa: ANN001
    """One run: local when ``workers`` is None, else Ray with that many workers."""
    from qa.engine import ray_engine
    from qa.engine.run import RunEngine

    if workers is None:
        total, stamps = timed(lambda cb: RunEngine(store, on_shard=cb).start(config_factory()))
    else:
        total, stamps = timed(lambda cb: ray_engine.start(store, config_factory(), num_workers=workers, on_shard=cb))
    gaps = np.diff(stamps)
    steady = float(gaps.mean()) if len(gaps) else float("nan")
    return {"total": total, "per_shard": steady, "startup": stamps[0] - steady, "shards": len(stamps)}


def round_trip(n: int) -> float:
    """Seconds per empty shard sent to one ShardWorker actor and awaited, one at a time (dispatch, argument and
    result serialization, the actor-side call): Ray's own cost per shard, without pipelining."""
    import ray

    from qa.engine.ray_worker import ShardWorker, WorkerSpec

    actor = ray.remote(ShardWorker).options(num_cpus=1).remote(
        WorkerSpec("identity", "cpu", ["psnr"], [0], None, False))
    ray.get(actor.ping.remote())
    ray.get(actor.run_shard.remote(0, []))  # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        ray.get(actor.run_shard.remote(i, []))
    per = (time.perf_counter() - t0) / n
    ray.kill(actor)
    return per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard-size", type=int, default=4, help="cases per shard in the suite workload")
    ap.add_argument("--tiny", type=int, default=48, help="one-case shards in the overhead workload")
    ap.add_argument("--write-docs", action="store_true", help="update the Ray section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    import ray

    from qa.engine.run import RunConfig
    from qa.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="qa-ray-bench-"))
    store = Store(tmp / "qa.duckdb")
    tiny = tiny_refset(tmp / "tiny", args.tiny)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    workloads = {
        "suite": lambda: RunConfig(decoder="bicubic", reference_set="default", metrics=["psnr", "ssim"],
                                   shard_size=args.shard_size, progress=False, thumbnails=True),
        "overhead": lambda: RunConfig(decoder="identity", reference_set=str(tiny), metrics=["psnr"], shard_size=1,
                                      progress=False, thumbnails=False),
    }
    rows = []
    out: dict[tuple[str, str], dict[str, float]] = {}
    for wname, factory in workloads.items():
        for label, workers in (("local", None), ("ray x1", 1), ("ray x2", 2)):
            r = measure(store, factory, workers)
            out[(wname, label)] = r
            rows.append(f"| {wname} | {label} | {int(r['shards'])} | {r['total']:.2f} | {r['startup']:.2f} | "
                        f"{1000 * r['per_shard']:.1f} |")
            print(rows[-1], flush=True)
    rtt = round_trip(100)
    ray.shutdown()
    load1 = os.getloadavg()
    diff = {w: 1000 * (out[(w, "ray x1")]["per_shard"] - out[(w, "local")]["per_shard"]) for w in workloads}
    section = "\n".join([
        "## Ray",
        "",
        "Local engine against `--engine ray` with 1 and 2 workers (actors) on a local Ray cluster, same store, same",
        "shards. `ms/shard` = mean time between consecutive shard commits (steady state); `startup` = from the",
        "call to the first commit minus one steady shard (for Ray: actor processes importing torch and building",
        "the decoder and metrics; for local: loading them in-process). Wall = the whole `start` call, finalize",
        "(set results) included. With Ray the driver commits shard k while the actor computes shard k+1 (two",
        "shards are queued per actor), so its steady time can be below the local engine's.",
        "",
        "| workload | engine | shards | wall s | startup s | ms/shard |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"- `ray.init` of the local cluster: {init_s:.1f} s (once per `qa run`, not included above).",
        f"- Ray's overhead per shard (an empty shard sent to one actor and awaited, 100 times in a row: dispatch,"
        f" serialization, the call): {1000 * rtt:.1f} ms.",
        f"- Steady ms/shard, Ray x1 minus local: {diff['overhead']:+.1f} ms on one-case no-op shards, "
        f"{diff['suite']:+.1f} ms on the suite's {args.shard_size}-case shards (negative = the overlap above wins).",
        f"- Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, ray {ray.__version__}; load average {load0[0]:.1f} before, {load1[0]:.1f} "
        "after (shared with other jobs: wall times are noisy).",
        f"- Command: `.venv/bin/python benchmarks/ray_overhead.py --shard-size {args.shard_size} --tiny {args.tiny}`",
    ])
    print(section)
    if args.write_docs:
        write_docs(section)
    return 0


def write_docs(section: str) -> None:
    """Replace (or append) the ``## Ray`` section of docs/benchmarks.md."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Ray"), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + section.splitlines() + [""] + lines[end:]).rstrip("\n") + "\n"
    DOCS.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
