"""Contract: qa's ``upstream`` L2P backend against T2I-L2P's DiffSynth fork (``QA_L2P_REPO``).

A tiny random L2P DiT (the fork's ``ZImageDiT`` shrunk through the fork's own ``extra_kwargs``), a tiny Qwen3 text
encoder and a word-level tokenizer with a chat template, made in a temporary folder. CPU bfloat16 convolutions run
in float32 (tests/upstream/cpu_shim.py, speed only). Skipped with the reason where no checkout is named.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.errors import DecoderError

pytestmark = pytest.mark.upstream
SIDE = 128  # (128/16)^2 = 64 image tokens, a multiple of the fork's 32


def _decode(dec, prompt: str, seed: int) -> torch.Tensor:
    from tests.upstream.cpu_shim import bf16_conv_in_fp32

    with bf16_conv_in_fp32():
        return dec.decode(DecodeBatch(["c0"], [prompt], None, (SIDE, SIDE)), seed)


@pytest.fixture(scope="module")
def l2p(l2p_folder: Path):
    from qa.decoders.l2p import make_l2p

    dec = make_l2p(backend="upstream", path=l2p_folder, steps=2, height=SIDE, width=SIDE)
    assert dec.unavailable_reason() is None, dec.unavailable_reason()
    return dec


def test_generates_seeded_images_that_follow_the_prompt(l2p):
    a, b, c = (_decode(l2p, "a red cat", s) for s in (0, 0, 1))
    assert a.shape == (1, 3, SIDE, SIDE) and float(a.min()) >= 0 and float(a.max()) <= 1 and float(a.std()) > 0.01
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 1e-3
    assert float((a - _decode(l2p, "a blue house", 0)).abs().mean()) > 1e-4
    assert l2p.rand_device == "cpu" and l2p.settings["rand_device"] == "cpu"


@pytest.fixture(scope="module")
def upstream_pipe(l2p_folder: Path):
    """The fork's pipeline loaded here as its own inference.py does (bfloat16; DiT, text encoder, tokenizer)."""
    from diffsynth.pipelines.z_image_L2P import ModelConfig, ZImagePipeline

    return ZImagePipeline.from_pretrained(
        torch_dtype=torch.bfloat16, device="cpu",
        model_configs=[ModelConfig(path=[str(l2p_folder / "l2p_tiny.safetensors")]),
                       ModelConfig(path=[str(l2p_folder / "text_encoder/model.safetensors")])],
        tokenizer_config=ModelConfig(path=str(l2p_folder / "tokenizer")),
    )


@pytest.mark.parametrize(("steps", "cfg_scale", "seed"), [(2, 2.0, 0), (3, 3.5, 5)])
def test_generate_equals_the_forks_own_call(l2p_folder: Path, upstream_pipe, steps, cfg_scale, seed):
    """Golden: qa's image against ``pipe(prompt, seed, rand_device, num_inference_steps, cfg_scale, height,
    width)`` (the fork's inference.py:27-35) on a pipeline loaded separately, as 8-bit RGB / 255. Equal bit for
    bit: the same operations on the same inputs, on the CPU (the same-seed images above are equal bit for bit)."""
    import numpy as np

    from qa.decoders.l2p import make_l2p
    from tests.upstream.cpu_shim import bf16_conv_in_fp32

    dec = make_l2p(backend="upstream", path=l2p_folder, steps=steps, cfg_scale=cfg_scale, height=SIDE, width=SIDE)
    ours = _decode(dec, "a red cat", seed)
    with bf16_conv_in_fp32():
        img = upstream_pipe(prompt="a red cat", seed=seed, rand_device="cpu", num_inference_steps=steps,
                            cfg_scale=cfg_scale, height=SIDE, width=SIDE)
    theirs = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    assert float(theirs.std()) > 0.01
    assert torch.equal(ours, theirs), float((ours - theirs).abs().max())


def test_weights_sha256_covers_dit_and_text_encoder(l2p, l2p_folder: Path):
    import hashlib

    h = hashlib.sha256()
    for f in [l2p_folder / "l2p_tiny.safetensors", l2p_folder / "text_encoder/model.safetensors"]:
        h.update(f.read_bytes())
    assert l2p.weights_sha256() == h.hexdigest()


def test_a_stray_safetensors_file_is_named_not_misdetected(l2p_folder: Path, tmp_path: Path):
    from qa.decoders.l2p import make_l2p

    folder = shutil.copytree(l2p_folder, tmp_path / "model")
    shutil.copy(folder / "l2p_tiny.safetensors", folder / "extra.safetensors")
    dec = make_l2p(backend="upstream", path=folder, steps=1, height=SIDE, width=SIDE)
    assert "2 top-level .safetensors files (extra.safetensors, l2p_tiny.safetensors)" in (dec.unavailable_reason() or "")
    with pytest.raises(DecoderError, match="extra.safetensors"):
        _decode(dec, "a cat", 0)


def test_an_unrecognised_dit_is_a_decoder_error_naming_the_folder(l2p_folder: Path, tmp_path: Path):
    """A DiT whose tensor shapes no MODEL_CONFIGS entry has: the fork raises ValueError, qa names the folder."""
    from safetensors.torch import load_file, save_file

    from qa.decoders.l2p import make_l2p

    folder = shutil.copytree(l2p_folder, tmp_path / "model")
    sd = load_file(str(folder / "l2p_tiny.safetensors"))
    sd["x_pad_token"] = torch.zeros(1, 65)
    save_file(sd, str(folder / "l2p_tiny.safetensors"))
    dec = make_l2p(backend="upstream", path=folder, steps=1, height=SIDE, width=SIDE)
    with pytest.raises(DecoderError, match=f"{folder}: L2P could not load it .ValueError: Cannot detect the model"):
        _decode(dec, "a cat", 0)


def test_settings_upstream_cannot_run_are_refused():
    from qa.decoders.l2p import make_l2p

    with pytest.raises(DecoderError, match="multiple of 32"):
        make_l2p(backend="upstream", height=64, width=64)
    with pytest.raises(DecoderError, match="bfloat16"):
        make_l2p(backend="upstream", dtype="float32")
