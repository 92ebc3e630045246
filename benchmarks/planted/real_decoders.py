"""Real-decoder check: a GAN upsampler (Real-ESRGAN x4plus) must score higher ``invented_detail`` (and
``invented_peak``, the region score) than bicubic.

Usage (from the repository root):
    .venv/bin/python -m benchmarks.planted.real_decoders [--reference-set default] [--decoder esrgan]

For every image of the reference set: z = area-x4 downsampling of the reference (the decoders' encoder), both
decoders upsample z back to the reference's size, and each output is scored against the reference. Prints one
line per image and the share of images where the generative decoder scores higher, for each score.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from qa.decoders.base import DecodeBatch
from qa.imageio import load_image
from qa.metrics.invented import oracle
from qa.refset.manifest import load_reference_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-set", default="default")
    ap.add_argument("--decoder", default="esrgan")
    ap.add_argument("--baseline", default="bicubic")
    args = ap.parse_args(argv)
    from qa.decoders.factory import make_decoder

    gen, base = make_decoder(args.decoder), make_decoder(args.baseline)
    if gen.encoder is None or gen.scale != base.scale:
        print(f"{args.decoder} and {args.baseline} must share an encoder scale", file=sys.stderr)
        return 2
    refset = load_reference_set(args.reference_set)
    wins, peak_wins, n, t0 = 0, 0, 0, time.time()
    print(f"{'image':28s} {args.decoder:>10s} {args.baseline:>10s}  hf_ratio({args.decoder}/{args.baseline})  "
          f"peak {args.decoder:>6s} {args.baseline:>8s}")
    for item in refset.good:
        ref = load_image(item.path).pixels
        h, w = ref.shape[:2]
        k = gen.scale
        ref = ref[: h - h % k, : w - w % k]
        t = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1)))[None]
        z = gen.encoder.encode(t)
        batch = DecodeBatch([item.id], [item.caption], latents=z, size=ref.shape[:2])
        outs = [d.decode(batch, 0)[0].numpy().transpose(1, 2, 0).clip(0, 1) for d in (gen, base)]
        res = [oracle.invented_detail(o, ref) for o in outs]
        scores, peaks = [r.invented for r in res], [r.peak for r in res]
        ratio = oracle.hf_energy(outs[0]) / oracle.hf_energy(outs[1])
        wins += scores[0] > scores[1]
        peak_wins += peaks[0] > peaks[1]
        n += 1
        print(f"{item.id:28s} {scores[0]:10.4f} {scores[1]:10.4f}  {ratio:6.2f}  {peaks[0]:11.4f} {peaks[1]:8.4f}",
              flush=True)
    print(f"invented_detail: {args.decoder} > {args.baseline} on {wins}/{n} images ({100 * wins / max(n, 1):.0f}%); "
          f"invented_peak: on {peak_wins}/{n} ({100 * peak_wins / max(n, 1):.0f}%), {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
