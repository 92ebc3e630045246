"""Where the CPU time of ``qa run`` goes per case, decode excluded: each metric, each analysis, image encoding,
storage (CPU seconds of the whole process, all threads, and the share of the case's total).

Runs the engine's own :class:`~qa.engine.shard.ShardRunner` on a reference set (``--reference-set``, default the
32 built-in tiles; at release resolution a folder of 2048 px images) with every default metric (or
``--metrics``), ``--seeds 2``, and times, per shard, the decode, each metric's ``prepare`` and ``compute`` (the
metric's own work and the shared analyses it triggers), each invented-detail analysis call, image encoding
(thumbnails and maps) and the commit to a DuckDB file. The first ``--warmup`` cases are run first and not
counted (one-off compilation, model loading); the counted cases are one shard, committed once (as the engine
does with up to 8 cases a shard). CPU = ``time.process_time()`` around each step. As in ``qa run``, the metrics
get a store (the text metrics' feature cache), and a tree with :mod:`qa.engine.shard_features` fetches and stores
the shard's features around it as its engine does; issue 31's full-resolution tiles are timed and committed.
A profile of an older tree: run this file by path with ``PYTHONPATH=<tree>``.

    PYTHONPATH=. .venv/bin/python -m benchmarks.profile_case --reference-set /path/to/2048px-set --threads 2
"""

from __future__ import annotations

import argparse
import functools
import importlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIMES: dict[str, float] = defaultdict(float)
_DEPTH = [0]  # nested timers (an analysis inside a metric's prepare) are counted in both lines


def timed(label: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped so that its CPU seconds are added to ``TIMES[label]``."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[label(*args, **kwargs) if callable(label) else label] += time.process_time() - t0
    return wrapper


def instrument(runner: Any) -> None:
    """Wrap the runner's metrics, decode, image encoding and the invented-detail analyses with timers."""
    from qa.engine import shard
    from qa.metrics.invented import analysis

    for m in runner.image_metrics:
        m.prepare = timed(f"metric {m.name} (prepare)", m.prepare)
        m.compute = timed(f"metric {m.name}", m.compute)
    for m in runner.fed_set_metrics:
        m.update = timed(f"set metric {m.name} (update)", m.update)
    runner._decode_cases = timed("decode (excluded from the total)", runner._decode_cases)
    shard.png_bytes = timed("image encoding (thumbnails, maps)", shard.png_bytes)
    pixels = getattr(shard, "full_pixels", None)  # issue 31's full-resolution tiles (absent in older trees)
    if pixels is not None:
        pixels.keep = timed("full-resolution tiles and regions (engine.pixels.keep)", pixels.keep)
    for name in ("analyse", "analyse_identical", "hf_energy", "distortion"):
        setattr(analysis, name, timed(f"  of which analysis.{name}", getattr(analysis, name)))


def _shard_features(store: Any, runner: Any) -> Any:
    """The engine's per-shard feature caches (``qa.engine.shard_features``), None in a tree without them (its
    metrics then read and write the store's feature cache directly, as its engine did)."""
    try:
        from qa.engine.shard_features import ShardFeatures
    except ImportError:
        return None
    return ShardFeatures(store, [*runner.image_metrics, *runner.set_metrics])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-set", default="default")
    ap.add_argument("--decoder", default="bicubic")
    ap.add_argument("--metrics", default=None, help="comma-separated (default: every registered metric)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, help="cases run first and not counted")
    ap.add_argument("--cases", type=int, default=0, help="cases counted (default: the rest of the set)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    importlib.import_module("qa")  # first: what qa sets for the process (OMP_WAIT_POLICY) precedes torch's OpenMP
    import torch

    torch.set_num_threads(args.threads)

    try:
        from qa.decoders.factory import make_decoder
    except ImportError:  # a checkout before the decoder factory (for a profile of an older tree)
        from qa.engine.plan import make_decoder  # type: ignore[attr-defined,no-redef]
    from qa.engine.cases import load_case
    from qa.engine.plan import make_metrics
    from qa.engine.shard import ShardRunner
    from qa.refset.manifest import load_reference_set
    from qa.store import Store
    from qa.store import results as store_results

    refset = load_reference_set(args.reference_set)
    decoder = make_decoder(args.decoder, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        # the metrics get a store, as in `qa run` (the text metrics' feature cache reads and writes it)
        store = Store(Path(tmp) / "profile.duckdb")
        with store.transaction():
            pass  # the file made and migrated, as a run's store is before its metrics read it
        metrics = make_metrics(args.metrics.split(",") if args.metrics else None, store, args.device)
        runner = ShardRunner(decoder, metrics, [0, 1])
        features = _shard_features(store, runner)
        multiple = decoder.encoder.factor if decoder.encoder is not None else 1
        items = refset.items
        warm, rest = items[: args.warmup], items[args.warmup :]
        if args.cases:
            rest = rest[: args.cases]
        for item in warm:
            warm_cases = [load_case(item, multiple)]
            if features is not None:
                features.fetch(warm_cases)
            runner.run(warm_cases)
        instrument(runner)
        TIMES.clear()
        cases = [load_case(item, multiple) for item in rest]
        t0 = time.process_time()
        if features is not None:  # as the engine does around a shard (qa.engine.shard_features, when present)
            features.fetch(cases)
        out = runner.run(cases)  # one shard, as the engine runs them (8 cases by default)
        t1 = time.process_time()
        full = {"regions": out.regions, "tiled": out.tiled} if hasattr(out, "tiled") else {}  # issue 31's tiles
        store_results.commit_shard(store, "profile", 0, out.rows, out.images, out.n_cases, "profile", **full)
        if features is not None:
            features.store_new()
        TIMES["storage (DuckDB commit)"] += time.process_time() - t1
        total = time.process_time() - t0
    n = max(1, len(rest))
    decode = TIMES.get("decode (excluded from the total)", 0.0)
    case_total = (total - decode) / n
    print(f"{n} cases of {args.reference_set}, {args.threads} threads, device {args.device}; "
          f"CPU s per case (decode excluded): {case_total:.3f}\n")
    print("| step | CPU s per case | share |\n|---|---|---|")
    for label, sec in sorted(TIMES.items(), key=lambda kv: -kv[1]):
        share = "" if label.startswith("decode") else f"{100 * sec / n / case_total:.1f}%"
        print(f"| {label} | {sec / n:.3f} | {share} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
