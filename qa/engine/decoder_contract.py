"""What the engine checks of a decoder's output before anything scores it: its type and shape, finite values, and
that a decoder declared deterministic gives every seed the same output. A violation is the case's error (a
:class:`~qa.errors.DecoderError` for the whole batch, a message per case otherwise), never a number.

Why determinism is checked: the engine decodes a deterministic decoder with two seeds so that its seed variance is
measured rather than assumed (:func:`qa.engine.shard.effective_seeds`). A decoder that says it is deterministic and
is not (dropout left on, an unseeded noise draw) makes every comparison with an approved run partly a comparison of
random draws, and a stochastic decoder's own checks (seed variance, several seeds averaged) never ran on it.
"""

from __future__ import annotations

import torch

from qa.decoders.base import DecodeBatch, Decoder
from qa.errors import DecoderError

#: largest |difference| (pixels in [0, 1]) allowed between two seeds' outputs of a decoder declared deterministic:
#: half an 8-bit level, so the two round to 8-bit images at most one level apart. A GPU's non-deterministic float
#: sums (about 1e-6) stay far under it; dropout left on or an unseeded noise draw (0.01 and more) do not
DETERMINISM_TOLERANCE = 0.5 / 255


def check_output(out: object, batch: DecodeBatch, size: tuple[int, int] | None) -> torch.Tensor:
    """``out`` when it is an (N, 3, H, W) tensor of the batch's size; :class:`DecoderError` saying what it is
    otherwise."""
    if not isinstance(out, torch.Tensor):
        raise DecoderError(f"decoder returned {type(out).__name__}, expected a torch.Tensor (N, 3, H, W)")
    if out.ndim != 4 or out.shape[0] != len(batch) or out.shape[1] != 3:
        raise DecoderError(f"decoder returned shape {tuple(out.shape)}, expected ({len(batch)}, 3, H, W)")
    if size is not None and tuple(out.shape[-2:]) != tuple(size):
        raise DecoderError(f"decoder returned {out.shape[-1]}x{out.shape[-2]}, expected {size[1]}x{size[0]}")
    return out


def non_finite(out: torch.Tensor, case_ids: list[str], seed: int) -> dict[str, str]:
    """Case id -> why it fails, for each image of ``out`` (N, 3, H, W) with NaN or Inf values."""
    bad = (~torch.isfinite(out)).flatten(1).sum(1)
    return {c: f"{c}: decoder returned {int(bad[i])} NaN/Inf values (seed {seed})"
            for i, c in enumerate(case_ids) if int(bad[i])}


def unreproduced(decoder: Decoder, out: torch.Tensor, first_out: torch.Tensor, case_ids: list[str], seed: int,
                 first: int) -> dict[str, str]:
    """Case id -> why it fails, where ``decoder`` is declared deterministic and ``out`` (seed ``seed``) differs from
    ``first_out`` (seed ``first``; both (N, 3, H, W) in [0, 1]) by more than :data:`DETERMINISM_TOLERANCE` at some
    pixel. Empty for a stochastic decoder."""
    if decoder.stochastic or seed == first:
        return {}
    gaps = (out - first_out).abs().flatten(1).amax(1)
    return {c: (f"{c}: decoder {decoder.name!r} is declared deterministic, but seed {seed} decoded the same input "
                f"differently from seed {first} (largest difference {float(gaps[i]):.3g} of the [0, 1] range, more "
                "than half an 8-bit level); declare it stochastic (stochastic = True) if its output depends on the "
                "seed, else make it reproducible (eval mode, no unseeded noise)")
            for i, c in enumerate(case_ids) if float(gaps[i]) > DETERMINISM_TOLERANCE}
