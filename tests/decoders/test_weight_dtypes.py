"""Checkpoints whose tensors are not floating point (audit F8): an int8 copy of a VAE loaded without a word and
decoded another network (PSNR 10.6 dB, status ok); the vae and taesd loaders now refuse it, naming the tensors
and the dtype, while float16 / float32 files (the released TAEF2 files are float16) and integer buffers load."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from qa.decoders.base import DecodeBatch
from qa.decoders.taesd import load_halves
from qa.decoders.taesd_layout import VARIANTS, build_decoder, build_encoder
from qa.decoders.vae import VAEDecoder
from qa.errors import DecoderError


def _batch(z: torch.Tensor) -> DecodeBatch:
    return DecodeBatch(case_ids=[f"c{i}" for i in range(len(z))], captions=[""] * len(z), latents=z,
                       size=(z.shape[-2] * 2, z.shape[-1] * 2))


def _recast(folder: Path, out: Path, dtype: torch.dtype, only: str | None = None) -> Path:
    """A copy of the diffusers ``folder`` with its floating-point tensors (or only the one named ``only``) cast
    to ``dtype`` (integer dtypes: rounded, as the audit's int8 copy was)."""
    shutil.copytree(folder, out)
    for file in out.glob("*.safetensors"):
        sd = load_file(str(file))
        save_file({k: (v.round().to(dtype) if v.is_floating_point() and only in (None, k) else v)
                   for k, v in sd.items()}, str(file))
    return out


@pytest.mark.parametrize("backend", ["diffusers", "embedded"])
def test_an_int8_vae_checkpoint_is_refused_naming_tensors_and_dtype(vae_folders: dict[str, Any], tmp_path: Path,
                                                                    backend: str) -> None:
    _, folder = vae_folders["AutoencoderKL"]
    bad = _recast(folder, tmp_path / "int8", torch.int8)
    dec = VAEDecoder(backend=backend, path=bad)
    with pytest.raises(DecoderError) as exc:
        dec.decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0)
    msg = str(exc.value)
    assert str(bad) in msg and "not floating point" in msg and " I8" in msg
    assert "diffusion_pytorch_model.safetensors:decoder.conv_in.bias I8" in msg and "quantised" in msg


def test_one_integer_tensor_is_enough_to_refuse(vae_folders: dict[str, Any], tmp_path: Path) -> None:
    _, folder = vae_folders["AutoencoderKL"]
    bad = _recast(folder, tmp_path / "one", torch.uint8, only="decoder.conv_out.weight")
    with pytest.raises(DecoderError, match=r"1 tensor\(s\) are not floating point, e\.g\. "
                                           r"diffusion_pytorch_model\.safetensors:decoder\.conv_out\.weight U8"):
        _ = VAEDecoder(path=bad).model


def test_float_checkpoints_of_every_class_still_load(vae_folders: dict[str, Any], tmp_path: Path) -> None:
    """float32 files of every installed class (Flux2's has a BatchNorm) and a float16 copy load."""
    for name, (_, folder) in vae_folders.items():
        assert VAEDecoder(path=folder).model is not None, name
    _, folder = vae_folders["AutoencoderKL"]
    half = shutil.copytree(folder, tmp_path / "half")
    for file in half.glob("*.safetensors"):
        save_file({k: v.half() for k, v in load_file(str(file)).items()}, str(file))
    assert VAEDecoder(path=half).decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0).dtype == torch.float32


def _save_taef2(folder: Path, dtype: torch.dtype) -> Path:
    folder.mkdir(parents=True)
    v = VARIANTS["taef2"]
    for build, name in ((build_encoder, "taef2_encoder.pth"), (build_decoder, "taef2_decoder.pth")):
        sd = build(v).state_dict()
        torch.save({k: (t * 100).round().to(dtype) for k, t in sd.items()}, folder / name)
    return folder


def test_an_int8_taesd_checkpoint_is_refused_naming_tensors_and_dtype(tmp_path: Path) -> None:
    bad = _save_taef2(tmp_path / "int8", torch.int8)
    with pytest.raises(DecoderError) as exc:
        load_halves(bad / "taef2_encoder.pth", bad / "taef2_decoder.pth", VARIANTS["taef2"])
    msg = str(exc.value)
    assert "taef2_encoder.pth" in msg and "not floating point" in msg and "int8" in msg and "quantised" in msg


def test_float16_taesd_files_as_released_still_load(tmp_path: Path) -> None:
    ok = _save_taef2(tmp_path / "half", torch.float16)
    enc, dec = load_halves(ok / "taef2_encoder.pth", ok / "taef2_decoder.pth", VARIANTS["taef2"])
    assert all(p.dtype == torch.float32 for p in [*enc.parameters(), *dec.parameters()])


def test_an_integer_batchnorm_counter_is_not_a_weight(vae_folders: dict[str, Any]) -> None:
    """Flux2's BatchNorm saves ``bn.num_batches_tracked`` as int64: a counter, not a weight; the file loads."""
    if "AutoencoderKLFlux2" not in vae_folders:
        pytest.skip("the installed diffusers has no AutoencoderKLFlux2")
    _, folder = vae_folders["AutoencoderKLFlux2"]
    assert load_file(str(next(folder.glob("*.safetensors"))))["bn.num_batches_tracked"].dtype == torch.int64
    assert VAEDecoder(path=folder).model is not None
