"""Does a PiD checkpoint fit the net it is loaded into? (the ``upstream`` PiD backend fails closed on it)

PiD's inference model loads a ``.pth`` checkpoint with ``strict=False`` whatever its caller says
(``pid/_src/models/pid_distill_model_infer.py:369-388`` at commit 2c8814c): a key ``net.X`` goes to the net as
``X``; ``net_ema.*``, ``fake_score.*`` and ``discriminator.*`` keys are skipped; any other key goes to the net
unchanged. It logs missing keys only with ``strict=True``, and qa must load with ``strict=False`` (as PiD's own
demo does), so a file with renamed or absent weights would load without a word and decode with the random
initial weights. :func:`key_mismatch` applies the same mapping and lists what does not fit.

No missing key is allowed, not even the ``lq_proj`` ones that upstream logs as "expected missing": upstream
expects them absent only when a text-to-image checkpoint initialises super-resolution *training*
(``pid/_src/models/pid_model.py:845-847``: "the zero-initialized LQ projections ensure the model starts from
pretrained T2I behavior"). At inference a net without its ``lq_proj`` weights ignores the latent it is asked to
decode, so such a file is not a PiD decoder. The released ``model_ema_bf16.pth`` holds the whole student
(``net_ema.*`` renamed to ``net.*``, PiD's ``docs/checkpointing_EN.md``), so it fits exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from qa.errors import DecoderError

#: key prefixes PiD's inference loader skips (training-only parts of a checkpoint)
SKIPPED_PREFIXES = ("net_ema.", "fake_score.", "discriminator.")
#: keys named in an error message, per kind
EXAMPLES = 3


def net_names(checkpoint_keys: Iterable[str]) -> set[str]:
    """The net parameter names PiD's inference loader makes of a checkpoint's keys."""
    out: set[str] = set()
    for key in checkpoint_keys:
        if key.startswith("net."):
            out.add(key[len("net."):])
        elif not key.startswith(SKIPPED_PREFIXES):
            out.add(key)
    return out


def key_mismatch(checkpoint_keys: Iterable[str], net_keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the net's keys the checkpoint does not fill, the checkpoint's keys the net does not have), both sorted;
    unexpected keys are named as the net would see them (``net.`` stripped)."""
    have, want = net_names(checkpoint_keys), set(net_keys)
    return sorted(want - have), sorted(have - want)


def check_fits(checkpoint: Path, checkpoint_keys: Iterable[str], net_keys: Iterable[str], what: str) -> None:
    """DecoderError naming ``checkpoint``, how many keys are missing / unexpected and a few of each, unless the
    checkpoint fills every weight of the net (``what``: the net, e.g. "PiD's flux/2k net") and has nothing else."""
    net_keys = list(net_keys)
    missing, unexpected = key_mismatch(checkpoint_keys, net_keys)
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the net's {len(net_keys)} weights missing ({_examples(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_examples(unexpected)})")
    only_lq = bool(missing) and not unexpected and all("lq_proj" in k for k in missing)
    why = ("it has no LQ-projection (lq_proj) weights: a text-to-image checkpoint, whose net would ignore the "
           "latent" if only_lq else "PiD would decode with random weights in their place")
    raise DecoderError(
        f"{checkpoint}: does not fit {what}: {'; '.join(parts)}; {why}",
        "use the distilled PiD student for this backbone and checkpoint_type (model_ema_bf16.pth from PiD's "
        "docs/checkpoints.md, keys net.*), or set backbone / checkpoint_type / experiment to the ones the file "
        "was trained with",
    )


def dcp_keys(folder: Path) -> list[str]:
    """The keys a DCP checkpoint's ``model`` folder holds (its ``.metadata``, a pickle: read only for a folder the
    user trusts, ``trust_dcp``)."""
    from torch.distributed.checkpoint import FileSystemReader  # noqa: PLC0415

    return [str(k) for k in FileSystemReader(str(folder)).read_metadata().state_dict_metadata]


def check_dcp_fits(folder: Path, keys: Iterable[str], net_keys: Iterable[str], prefix: str, what: str) -> None:
    """DecoderError unless a DCP checkpoint holds every weight of the net under ``prefix`` (``net.``, or
    ``net_ema.`` with ``load_ema_to_reg``). PiD loads a DCP folder with ``allow_partial_load=True``
    (``pid/_src/utils/model_loader.py``), so a weight it lacks would keep its random initial value without a word.
    Other keys (the EMA copy, the critic, optimiser state) are a training checkpoint's and are not errors."""
    have = set(keys)
    net_keys = list(net_keys)
    missing = sorted(k for k in net_keys if prefix + k not in have)
    if not missing:
        return
    raise DecoderError(
        f"{folder}: does not fit {what}: {len(missing)} of the net's {len(net_keys)} weights missing under "
        f"{prefix}* ({_examples(missing)}); PiD would decode with random weights in their place",
        "use the DCP folder of the distilled PiD student for this backbone and checkpoint_type, or the "
        "consolidated model_ema_bf16.pth; load_ema_to_reg = true reads the net_ema.* weights",
    )


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:EXAMPLES])
    return f"e.g. {shown}, ..." if len(keys) > EXAMPLES else shown


def checkpoint_keys(path: Path) -> list[str]:
    """The top-level keys of a ``.pth`` file as PiD's loader sees them (no wrapper unwrapped), read weights-only
    and memory-mapped where the file's format allows, so the tensors themselves are not read."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise DecoderError(f"{path}: not a state dict ({type(obj).__name__})", "use PiD's model_ema_bf16.pth")
    return [str(k) for k in obj]
