"""Seconds per image of each zoo decoder on this machine (a benchmark, not a test).

Every decoder decodes the latent of the same 256x256 crop of a real photograph (scikit-image's astronaut)
produced by its own encoder, so each output is 256x256: the ``vae`` decodes a 4x64x64 latent, ``pid`` a
4x32x32 latent (x2 over the VAE), ``esrgan`` and ``bicubic`` a 3x64x64 image (x4). Weight loading and one
warm-up decode are excluded; the median of ``--repeats`` timed decodes (seeds 0, 1, ...) is reported.

    .venv/bin/python benchmarks/decoders_speed.py [--size 256] [--repeats 3] [--threads 1] [--write-docs]

``--write-docs`` replaces the "Decoders" section of docs/benchmarks.md with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DEFAULT_DECODERS = ("vae", "pid", "esrgan", "bicubic")


def reference(size: int) -> torch.Tensor:
    """(1, 3, size, size) crop of scikit-image's astronaut photograph, in [0, 1]."""
    from skimage import data

    img = data.astronaut()  # 512x512 RGB uint8
    if size > img.shape[0]:
        raise SystemExit(f"--size must be <= {img.shape[0]}")
    y0 = (img.shape[0] - size) // 2
    crop = img[y0 : y0 + size, y0 : y0 + size].astype(np.float32) / 255.0
    return torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous()


def bench(name: str, ref: torch.Tensor, repeats: int, threads: int) -> dict[str, object]:
    from qa.decoders.base import DecodeBatch
    from qa.decoders.esrgan import ESRGANDecoder
    from qa.decoders.factory import make_decoder

    dec = make_decoder(name)
    if isinstance(dec, ESRGANDecoder):
        dec.threads = threads  # before the lazy load
    row: dict[str, object] = {"decoder": name, "backend": dec.backend, "stochastic": dec.stochastic}
    reason = dec.unavailable_reason()
    if reason:
        row["status"] = f"unavailable: {reason}"
        return row
    t0 = time.perf_counter()
    enc = dec.encoder
    z = enc.encode(ref)
    row["encode_s"] = time.perf_counter() - t0  # includes loading the weights
    batch = DecodeBatch(["bench"], ["an astronaut"], latents=z, size=tuple(ref.shape[-2:]))
    dec.decode(batch, seed=0)  # warm-up
    times = []
    for seed in range(repeats):
        t = time.perf_counter()
        out = dec.decode(batch, seed=seed)
        times.append(time.perf_counter() - t)
    row.update(
        status="ok", latent=tuple(z.shape[1:]), output=tuple(out.shape[-2:]), s_per_image=statistics.median(times),
        s_min=min(times), s_max=max(times),
    )
    return row


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}, no GPU used; 1-min load average at start {load[0]:.1f}"
    )


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| decoder | backend | stochastic | latent (C, h, w) | output | s / image (median) | min - max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            status = " ".join(str(r["status"]).split())
            lines.append(f"| {r['decoder']} | {r['backend']} | {r['stochastic']} | - | - | {status} | - |")
            continue
        lines.append(
            f"| {r['decoder']} | {r['backend']} | {r['stochastic']} | {r['latent']} | {r['output']} "
            f"| {r['s_per_image']:.3f} | {r['s_min']:.3f} - {r['s_max']:.3f} |"
        )
    return "\n".join(lines)


def write_docs(section: str) -> None:
    """Replace (or append) the ``## Decoders`` section of docs/benchmarks.md."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Decoders"), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + section.splitlines() + [""] + lines[end:]).rstrip("\n") + "\n"
    DOCS.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="reference (and output) side in pixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decoders", default=",".join(DEFAULT_DECODERS))
    ap.add_argument("--threads", type=int, default=1, help="torch and ncnn threads (default 1: shared machine)")
    ap.add_argument("--write-docs", action="store_true", help="update the Decoders section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ref = reference(args.size)
    where = machine()
    rows = [bench(n.strip(), ref, args.repeats, args.threads) for n in args.decoders.split(",") if n.strip()]
    cmd = "python benchmarks/decoders_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = (
        "## Decoders\n\n"
        f"Seconds per image to decode one {args.size}x{args.size} reference (output {args.size}x{args.size}) "
        f"with each zoo decoder, on the CPU with {args.threads} thread(s) for torch and ncnn; weight loading and "
        f"one warm-up excluded, median of {args.repeats} decodes. The machine is shared (see the load average): "
        "compare rows of one table, not numbers across machines.\n\n"
        f"Command: `{cmd.strip()}`  \nMachine: {where}\n\n" + table(rows) + "\n"
    )
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
