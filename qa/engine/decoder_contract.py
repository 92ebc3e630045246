"""What the engine checks of a decoder's output before anything scores it: its type, shape and value range, finite
values, that a decoder declared deterministic gives every seed the same output, and that a case's output does not
depend on the other cases of its batch. A violation is the case's error (a :class:`~qa.errors.DecoderError` for the whole batch, a
message per case otherwise), never a number.

Why determinism is checked: the engine decodes a deterministic decoder with two seeds so that its seed variance is
measured rather than assumed (:func:`qa.engine.shard.effective_seeds`). A decoder that says it is deterministic and
is not (dropout left on, an unseeded noise draw) makes every comparison with an approved run partly a comparison of
random draws, and a stochastic decoder's own checks (seed variance, several seeds averaged) never ran on it.
Why batches are checked: the batch size is a memory setting, not part of a run's identity (a finished run made with
another batch size stands in for a new one), so an output that depends on its batch mates (normalisation over the
batch, one noise draw for the whole batch) would make runs differ for no change of the decoder. Once per shard the
last case of a batch is decoded alone with the first seed and compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from qa.decoders.base import DecodeBatch, Decoder
from qa.errors import DecoderError

#: largest RMS difference (pixels in [0, 1]) between two decodes of one input that must agree (two seeds of a
#: decoder declared deterministic; a case alone and in its batch): one 8-bit level. A GPU's non-deterministic or
#: batch-size-dependent float sums stay under it even in bfloat16 (some pixels a unit in the last place, 1/256 at
#: most, apart; the RMS over an image far less); dropout left on, an unseeded noise draw or a normalisation over
#: the batch (0.01 and more) do not. RMS, not the largest pixel: one pixel a rounding step apart is no finding
DETERMINISM_TOLERANCE = 1.0 / 255


#: largest RMS change (pixels in [0, 1]) that clipping an output to [0, 1] may make: a decoder's overshoot past
#: black and white (a VAE's ringing at saturated edges: a few levels over a small share of the pixels, far under
#: 0.01 RMS) is clipped as any 8-bit writer would; 0.05 (13 levels RMS over the whole image) is an output in
#: another convention: [-1, 1] loses every value under mid-grey's place (0.2-0.4 RMS on a photo), 0..255 is
#: clipped to white
RANGE_TOLERANCE = 0.05


def rms_difference(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> np.ndarray:
    """RMS of ``a - b`` per image: (N,) float64 for two (N, ...) arrays or tensors of one shape (computed where
    the tensors are, in float32: a tolerance check, not a metric)."""
    d = torch.as_tensor(a).float() - torch.as_tensor(b).float()
    return d.flatten(1).square().mean(1).sqrt().double().cpu().numpy()


def to_tensor(pixels: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack (H, W, 3) float arrays into (N, 3, H, W) on ``device``: what a decoder's encoder is given."""
    arr = np.stack([np.asarray(p, dtype=np.float32) for p in pixels]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device)


def to_numpy(images: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) tensor to a list of float32 (H, W, 3) arrays."""
    arr = images.detach().to("cpu", torch.float32).numpy().transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(a) for a in arr]


def check_output(out: object, batch: DecodeBatch, size: tuple[int, int] | None) -> torch.Tensor:
    """``out`` when it is an (N, 3, H, W) tensor of the batch's size; :class:`DecoderError` saying what it is
    otherwise."""
    if not isinstance(out, torch.Tensor):
        raise DecoderError(f"decoder returned {type(out).__name__}, expected a torch.Tensor (N, 3, H, W)")
    if out.ndim != 4 or out.shape[0] != len(batch) or out.shape[1] != 3:
        raise DecoderError(f"decoder returned shape {tuple(out.shape)}, expected ({len(batch)}, 3, H, W)")
    if size is not None and tuple(out.shape[-2:]) != tuple(size):
        raise DecoderError(f"decoder returned {out.shape[-1]}x{out.shape[-2]}, expected {size[1]}x{size[0]}")
    if not out.is_floating_point():
        raise DecoderError(f"decoder returned {out.dtype} values, expected floating point in [0, 1]",
                           "convert 8-bit pixels with x.float() / 255")
    return out


def out_of_range(out: torch.Tensor, case_ids: list[str], seed: int) -> dict[str, str]:
    """Case id -> why it fails, for each image of ``out`` (N, 3, H, W; finite values) that clipping to [0, 1]
    would change by more than :data:`RANGE_TOLERANCE` (RMS): an output in another convention ([-1, 1], 0..255)
    whose clipped remainder would be scored as if it were the decode."""
    gaps = rms_difference(out, out.clamp(0.0, 1.0))
    lo, hi = out.flatten(1).amin(1), out.flatten(1).amax(1)
    return {c: (f"{c}: decoder returned values in [{float(lo[i]):.3g}, {float(hi[i]):.3g}] (seed {seed}); clipping "
                f"to [0, 1] would change the image by {float(gaps[i]):.3g} RMS, more than a decoder's overshoot: "
                "an output must be in [0, 1] (map [-1, 1] with (x + 1) / 2, 0..255 with x / 255)")
            for i, c in enumerate(case_ids) if float(gaps[i]) > RANGE_TOLERANCE}


def non_finite(out: torch.Tensor, case_ids: list[str], seed: int) -> dict[str, str]:
    """Case id -> why it fails, for each image of ``out`` (N, 3, H, W) with NaN or Inf values."""
    bad = (~torch.isfinite(out)).flatten(1).sum(1)
    return {c: f"{c}: decoder returned {int(bad[i])} NaN/Inf values (seed {seed})"
            for i, c in enumerate(case_ids) if int(bad[i])}


def baselines(dec: Decoder, batch: DecodeBatch, seeds: list[int]) -> dict[int, torch.Tensor]:
    """seed -> the decoder's baseline for ``batch``. A baseline that does not depend on the seed answers
    ``baseline(batch, None)`` (the :meth:`Decoder.baseline` contract) and is computed once for every seed (a
    stochastic decoder's plain VAE decode is the same for all of its seeds); one that does returns None there
    and is computed per seed (the generate track's source pipeline: same prompt, same seed)."""
    shared = dec.baseline(batch, None)
    if shared is not None:
        return dict.fromkeys(seeds, shared)
    return {s: b for s in seeds if (b := dec.baseline(batch, s)) is not None}


def checked_baselines(bases: dict[int, torch.Tensor], batch: DecodeBatch
                      ) -> tuple[dict[int, torch.Tensor], dict[str, str]]:
    """A decoder's baselines (seed -> (N, 3, H, W)) held to the output's contract: (the baselines in [0, 1], case id
    -> why it fails) where a case's baseline (its plain decode) holds NaN/Inf or lies outside [0, 1] (its checks
    against the plain decode would otherwise pass over the other images: scale audit 2026-12-07); not (N, 3, H, W)
    floating point raises :class:`DecoderError` (the batch fails; its size may differ from the output's, which
    the metrics that pair them report). A tensor shared by seeds stays shared."""
    done: dict[int, torch.Tensor] = {}
    failed: dict[str, str] = {}
    for seed, base in bases.items():
        if id(base) in done:
            continue
        checked = check_output(base, batch, None).float()
        finite = torch.nan_to_num(checked)
        bad = {**out_of_range(finite, batch.case_ids, seed), **non_finite(checked, batch.case_ids, seed)}
        for case_id, why in bad.items():
            failed.setdefault(case_id, why.replace(": decoder returned", ": the decoder's baseline (its plain decode) "
                                                   "returned", 1))
        done[id(base)] = finite.clamp(0.0, 1.0)
    return {seed: done[id(base)] for seed, base in bases.items()}, failed


def unreproduced(decoder: Decoder, out: torch.Tensor, first_out: torch.Tensor, case_ids: list[str], seed: int,
                 first: int) -> dict[str, str]:
    """Case id -> why it fails, where ``decoder`` is declared deterministic and ``out`` (seed ``seed``) differs from
    ``first_out`` (seed ``first``; both (N, 3, H, W) in [0, 1]) by more than :data:`DETERMINISM_TOLERANCE` (RMS).
    Empty for a stochastic decoder."""
    if decoder.stochastic or seed == first:
        return {}
    gaps = rms_difference(out, first_out)
    return {c: (f"{c}: decoder {decoder.name!r} is declared deterministic, but seed {seed} decoded the same input "
                f"differently from seed {first} (RMS difference {float(gaps[i]):.3g} of the [0, 1] range, more than "
                "one 8-bit level); declare it stochastic (stochastic = True) if its output depends on the "
                "seed, else make it reproducible (eval mode, no unseeded noise)")
            for i, c in enumerate(case_ids) if float(gaps[i]) > DETERMINISM_TOLERANCE}


def batch_dependent(decoder: Decoder, alone: np.ndarray, batched: np.ndarray, case_id: str, n: int) -> str | None:
    """Why a batch fails when case ``case_id`` decoded alone (``alone``) differs from its output in a batch of ``n``
    cases (``batched``; both (H, W, 3) in [0, 1], the same seed) by more than :data:`DETERMINISM_TOLERANCE` (RMS);
    None when they agree."""
    gap = float(rms_difference(alone[None], batched[None])[0]) if alone.shape == batched.shape else float("inf")
    if gap <= DETERMINISM_TOLERANCE:
        return None
    return (f"decoder {decoder.name!r} gave {case_id} another output decoded alone than in a batch of {n} cases "
            f"(RMS difference {gap:.3g} of the [0, 1] range, more than one 8-bit level): an output must "
            "depend on its own input and seed only (normalise each item, draw noise per item, e.g. a generator "
            "seeded per case); until then run with --batch-size 1")


def latents_of(decoder: Decoder, refs: torch.Tensor) -> torch.Tensor | None:
    """The latents the decoder decodes for references ``refs`` (N, 3, H, W): its encoder's, None where it decodes
    none (the generate track) or has no encoder."""
    encoder = decoder.encoder
    return encoder.encode(refs) if encoder is not None and decoder.decodes_latents else None


def decode_alone(decoder: Decoder, case_id: str, caption: str, pixels: np.ndarray, size: tuple[int, int],
                 seed: int) -> np.ndarray:
    """One case decoded in a batch of its own, as the engine decodes a batch (encode the (H, W, 3) reference where
    the decoder decodes latents, decode with ``seed``, check, clip): its (H, W, 3) output in [0, 1]."""
    with torch.inference_mode():
        z = latents_of(decoder, to_tensor([pixels], decoder.device))
        batch = DecodeBatch(case_ids=[case_id], captions=[caption], latents=z, size=size)
        out = check_output(decoder.decode(batch, seed), batch, size).float()
    return to_numpy(torch.nan_to_num(out).clamp(0.0, 1.0))[0]
