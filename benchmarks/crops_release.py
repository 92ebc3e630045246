"""Release resolution end to end: ``qa run`` on 2048 x 1280 photos, what it stores, and the report with crops.

    .venv/bin/python -m benchmarks.crops_release --out DIR --photos A.jpg B.jpg C.jpg \
        [--decoders bicubic,taef2,esrgan,taef2+esrgan] [--windows 0] [--repeats 3]
    .venv/bin/python -m benchmarks.crops_release --out DIR --report-only   # steps 4-5 on DIR's store as it is

1. Reference set: each photo centre-cropped to 8:5 and area-downsampled to 2048 x 1280 (``--windows 0``), or
   up to ``--windows N`` native-resolution 2048 x 1280 windows per photo (no resampling); PNG + manifest in
   ``DIR/set``.
2. ``qa run --decoder D ... --seeds 1`` (one seed; every registered metric unless ``--metrics``), timed (wall and
   CPU of the child process).
3. Stored bytes per case and decoder: thumbnails (``images``), full-resolution tiles per kind (``pixels`` +
   ``tiles``; the reference is shared by every decoder and counted once apart), regions; the DuckDB file size.
4. The first run of each decoder is approved (a throw-away Ed25519 key, ``override`` as a first release; the
   report verifies it with that key), each decoder without a second run is run again as the candidate (one seed,
   ``--candidate-metrics``: another metric list is another run identity, so qa runs it rather than reusing the
   approved run; deterministic decoders give the same pixels), and ``qa report`` is written: HTML size, the crops written beside it, and headless Chromium load time (``--repeats``; wall time of the
   whole browser process and the page's own ``data-ready-ms``), plus a screenshot of the first comparison.

Prints a markdown summary and one JSON line (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from qa.hashing import sha256_file
from qa.refset.manifest import write_manifest

SIZE = (2048, 1280)


def reference_set(photos: list[Path], dest: Path, windows: int) -> Path:
    """Write the reference set (see the module docstring) and return its folder."""
    dest.mkdir(parents=True, exist_ok=True)
    items = []
    w, h = SIZE
    for photo in photos:
        with Image.open(photo) as img:
            rgb = img.convert("RGB")
        crops: list[Image.Image] = []
        if windows <= 0:
            pw, ph = rgb.size
            cw, ch = (pw, round(pw * h / w)) if pw * h <= ph * w else (round(ph * w / h), ph)
            left, top = (pw - cw) // 2, (ph - ch) // 2
            crops.append(rgb.crop((left, top, left + cw, top + ch)).resize(SIZE, Image.Resampling.BOX))
        else:
            nx, ny = max(1, rgb.width // w), max(1, rgb.height // h)
            for j in range(ny):
                for i in range(nx):
                    if len(crops) < windows and rgb.width >= w and rgb.height >= h:
                        crops.append(rgb.crop((i * w, j * h, i * w + w, j * h + h)))
        for k, crop in enumerate(crops):
            name = f"{photo.stem.split('_by_')[0].lower()}-{k}"
            path = dest / f"{name}.png"
            crop.save(path, compress_level=1)
            items.append({"id": name, "file": path.name, "caption": f"photo {photo.name}", "licence": "see package",
                          "source": str(photo), "sha256": sha256_file(path)})
    write_manifest(dest, items)
    return dest


def qa(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run ``qa ARGS`` in ``cwd``; (wall s, CPU s of the child, stdout). Raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import sys; from qa.cli.main import main; sys.exit(main())", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"qa {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def stored(db: Path) -> dict[str, object]:
    """Bytes per run and kind (``qa.store.pixels.stored_bytes``; thumbnails from ``images``), the tiles of the
    whole file, and the file size."""
    from qa.store import Store
    from qa.store import pixels as store_pixels

    store = Store(db)
    out: dict[str, object] = {"file_bytes": db.stat().st_size}
    per_run = {}
    with store.snapshot() as snap:
        for run_id, decoder, n, seeds in snap.query("select run_id, decoder, n_cases, seeds from runs order by started_at"):
            thumbs = snap.query("select coalesce(sum(octet_length(png)), 0) from images where run_id = ?", [run_id])[0][0]
            per_run[str(run_id)] = {"decoder": decoder, "cases": n, "seeds": seeds, "thumbnails": int(str(thumbs)),
                                    **store_pixels.stored_bytes(snap, str(run_id))}
        out["tiles_total"] = int(str(snap.query("select coalesce(sum(octet_length(data)), 0) from tiles")[0][0]))
    out["runs"] = per_run
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--photos", type=Path, nargs="*", default=[], help="the photos (not with --report-only)")
    ap.add_argument("--decoders", default="bicubic,taef2,esrgan,taef2+esrgan")
    ap.add_argument("--metrics", default=None, help="comma-separated metrics (default: every registered one)")
    ap.add_argument("--candidate-metrics", default="psnr,ssim,invented_detail",
                    help="metrics of the candidate runs (default %(default)s); must differ from the first runs' list")
    ap.add_argument("--windows", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--report-only", action="store_true", help="no qa run: approve the first run of each decoder "
                    "in DIR/qa.duckdb (where no verified approval exists) and measure the report of that store")
    ap.add_argument("--qa-toml", type=Path, default=None, help="a qa.toml copied into --out (qa runs there), e.g. to "
                    "configure a decoder such as bicubic at factor 2")
    a = ap.parse_args(argv)
    if not a.photos and not a.report_only:
        ap.error("pass --photos A.jpg B.jpg ... (or --report-only on an existing --out)")
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if a.qa_toml is not None:
        (out / "qa.toml").write_text(a.qa_toml.read_text())
    refset = out / "set" if a.report_only else reference_set(a.photos, out / "set", a.windows)
    db = out / "qa.duckdb"
    env = {**os.environ, "QA_DB": str(db), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    decoders = [d for d in a.decoders.split(",") if d]
    metrics = ["--metrics", a.metrics] if a.metrics else []
    common = ["--reference-set", str(refset), "--no-progress", "--db", str(db), *metrics]
    result: dict[str, object] = {"decoders": decoders, "cases": len(list(refset.glob("*.png")))}
    timings = {}
    for d in [] if a.report_only else decoders:
        wall, cpu, _ = qa(["run", "--decoder", d, "--seeds", "1", *common], env, out)
        timings[d] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        print(f"qa run --decoder {d}: {wall:.1f} s wall, {cpu:.1f} CPU s", file=sys.stderr)
    result["run"] = timings
    result["stored"] = stored(db)
    # approve the first run of each decoder, run a candidate of each decoder that has no second run, write the report
    from qa.gate.signing import generate_key
    from qa.gate.signoff import record_signoff
    from qa.store import Store

    key = out / "bench_ed25519"
    if key.exists():  # the script run again on the same --out: the same reviewer key
        public = key.with_name(key.name + ".pub").read_text().rsplit(" ", 1)[0]
    else:
        public = generate_key(key, "bench")[1].split(" ", 1)[1]
    trusted = out / "allowed_signers"
    trusted.write_text(f"bench {public}\n")
    env["QA_TRUSTED_KEYS"] = str(trusted)  # the report verifies the approvals with it
    store = Store(db)
    # approvals that sign the run's evidence (older formats never count as the approved baseline)
    approved = {str(r) for r, in store.query("select s.run_id from signoffs s join signoff_proofs p using (seq) "
                                             "where s.decision = 'approve' and p.evidence_sha256 is not null")}
    candidates = {}
    for d in decoders:
        finished = [str(r) for r, in store.query("select run_id from runs where decoder = ? and status = 'finished' "
                                                   "order by started_at", [d])]
        if finished and finished[0] not in approved:
            record_signoff(store, finished[0], "bench", "approve", f"benchmark baseline of {d}", override=True,
                           key=key, trusted=trusted)
        if len(finished) >= 2 or a.report_only:  # a later run exists already (e.g. run apart): the candidate
            continue
        wall, cpu, _ = qa(["run", "--decoder", d, "--seeds", "1", "--reference-set", str(refset), "--no-progress",
                           "--db", str(db), "--metrics", a.candidate_metrics], env, out)
        candidates[d] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        print(f"candidate qa run --decoder {d}: {wall:.1f} s wall, {cpu:.1f} CPU s", file=sys.stderr)
    result["candidate_run"] = candidates
    report = out / "report.html"
    wall, cpu, _ = qa(["report", "--db", str(db), "--out", str(report)], env, out)
    crops = report.with_name(f"{report.stem}_crops")
    linked = sorted(crops.glob("*")) if crops.is_dir() else []
    from qa.report.browser import render, screenshot

    loads = [render(report) for _ in range(a.repeats)]
    screenshot(report, out / "compare.png", size=(1400, 1600), fragment="cmp-0-0")
    result["report"] = {
        "html_bytes": report.stat().st_size, "write_s": round(wall, 1), "crop_files": len(linked),
        "crop_bytes": sum(p.stat().st_size for p in linked),
        "load_wall_s": round(statistics.median(r.wall_s for r in loads), 2),
        "ready_ms": statistics.median(r.attr("ready-ms") or 0 for r in loads),
        "js_errors": max(r.attr("js-errors") or 0 for r in loads), "console": sorted({m for r in loads for m in r.console}),
    }
    result["stored_after_candidates"] = stored(db)
    n = int(str(result["cases"]))
    print("| decoder | run | thumbnails / case | output tiles / case | map tiles / case | regions |")
    print("|---|---|---|---|---|---|")
    runs = result["stored_after_candidates"]["runs"]  # type: ignore[index]
    for run_id, r in runs.items():
        mp = sum(v for k, v in r.items() if str(k).startswith("map:"))
        print(f"| {r['decoder']} | {run_id} | {r['thumbnails'] / n / 1e3:.0f} KB | {r.get('output', 0) / n / 1e6:.2f} MB | "
              f"{mp / n / 1e6:.3f} MB | {r['regions']} |")
    ref = next((r.get("reference", 0) for r in runs.values() if r.get("reference")), 0)
    final = result["stored_after_candidates"]
    print(f"reference tiles (shared): {ref / n / 1e6:.2f} MB per case; all tiles {final['tiles_total'] / 1e6:.1f} "  # type: ignore[index]
          f"MB; DuckDB file {final['file_bytes'] / 1e6:.1f} MB")  # type: ignore[index]
    rep = result["report"]
    print(f"report {rep['html_bytes'] / 1e6:.2f} MB + {rep['crop_files']} crop files {rep['crop_bytes'] / 1e6:.2f} MB; "  # type: ignore[index]
          f"load {rep['load_wall_s']} s wall (browser start included), ready {rep['ready_ms']} ms")  # type: ignore[index]
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
