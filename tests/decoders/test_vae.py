"""The vae family against the real diffusers classes (small configs, save_pretrained -> adapter)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.vae import SUPPORTED_CLASSES, VAEDecoder
from qa.errors import DecoderError, WeightsMissingError
from tests.decoders.decoder_fixtures import SMALL_CONFIGS, build, save, smooth_images


def _batch(z: torch.Tensor, size: tuple[int, int] | None = None) -> DecodeBatch:
    return DecodeBatch(case_ids=[f"c{i}" for i in range(len(z))], captions=[""] * len(z), latents=z, size=size)


def _direct_encode(model, cls_name: str, x: torch.Tensor) -> torch.Tensor:
    out = model.encode(x * 2 - 1)
    if cls_name == "AutoencoderTiny":
        return out.latents
    if cls_name == "AutoencoderDC":
        return out.latent
    return out.latent_dist.mean


@pytest.mark.parametrize("cls_name", SUPPORTED_CLASSES)
def test_round_trip_matches_the_diffusers_model(cls_name, vae_folders):
    if cls_name not in vae_folders:
        pytest.skip(f"the installed diffusers has no {cls_name}")
    model, folder = vae_folders[cls_name]
    dec = VAEDecoder(name="v", path=folder)
    assert dec.backend == "diffusers" and dec.unavailable_reason() is None
    x = smooth_images(2, 32)
    enc = dec.encoder
    z = enc.encode(x)
    f = enc.factor
    assert z.shape == (2, SMALL_CONFIGS[cls_name]["latent_channels"], 32 // f, 32 // f)
    with torch.no_grad():
        z_ref = _direct_encode(model, cls_name, x)
        y_ref = ((model.decode(z_ref).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(z, z_ref, atol=1e-5, rtol=1e-5)
    y = dec.decode(_batch(z, (32, 32)), seed=0)
    assert y.shape == (2, 3, 32, 32) and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    # deterministic: the seed does not matter
    torch.testing.assert_close(dec.decode(_batch(z), seed=7), y, atol=0, rtol=0)


def test_config_scaling_and_shift_are_read_from_the_folder(vae_folders):
    _, folder = vae_folders["AutoencoderKL"]
    dec = VAEDecoder(path=folder)
    assert dec.latent_scaling() == (0.5, 0.1)
    raw = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(dec.to_model_latents(raw), (raw - 0.1) * 0.5)
    torch.testing.assert_close(dec.from_model_latents(dec.to_model_latents(raw)), raw)


def test_flux2_latents_follow_the_pipeline_normalisation(vae_folders):
    if "AutoencoderKLFlux2" not in vae_folders:
        pytest.skip("the installed diffusers has no AutoencoderKLFlux2")
    from diffusers import Flux2Pipeline

    model, folder = vae_folders["AutoencoderKLFlux2"]
    dec = VAEDecoder(path=folder)
    raw = torch.randn(1, 4, 8, 8)
    # the pipeline's own patchify and BatchNorm statistics, written out independently
    p = Flux2Pipeline._patchify_latents(raw)
    expected = (p - model.bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
        model.bn.running_var.view(1, -1, 1, 1) + model.config.batch_norm_eps
    )
    torch.testing.assert_close(dec.to_model_latents(raw), expected)
    torch.testing.assert_close(dec.from_model_latents(expected), raw, atol=1e-5, rtol=1e-5)


def test_weights_sha256_is_the_file_hash(vae_folders):
    _, folder = vae_folders["AutoencoderKL"]
    files = sorted(folder.glob("*.safetensors"))
    assert len(files) == 1
    assert VAEDecoder(path=folder).weights_sha256() == hashlib.sha256(files[0].read_bytes()).hexdigest()


def test_corrupt_weights_name_the_folder(vae_folders, tmp_path):
    _, folder = vae_folders["AutoencoderKL"]
    bad = shutil.copytree(folder, tmp_path / "corrupt")
    weights = next(bad.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:200])  # truncated
    with pytest.raises(DecoderError, match="corrupt"):
        VAEDecoder(path=bad).decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0)


def test_wrong_shape_weights_are_refused(tmp_path):
    save(build("AutoencoderKL"), tmp_path / "a")
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    cfg["block_out_channels"] = [8, 32]  # the weights were saved for (8, 16)
    (tmp_path / "a" / "config.json").write_text(json.dumps(cfg))
    dec = VAEDecoder(path=tmp_path / "a")
    with pytest.raises(DecoderError, match=str(tmp_path / "a")):
        dec.decode(_batch(torch.zeros(1, 4, 4, 4)), seed=0)


def test_pickle_only_folders_and_missing_folders_are_refused(vae_folders, tmp_path):
    _, folder = vae_folders["AutoencoderKL"]
    pkl = tmp_path / "pickled"
    pkl.mkdir()
    shutil.copy(folder / "config.json", pkl / "config.json")
    (pkl / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(WeightsMissingError, match="safetensors"):
        _ = VAEDecoder(path=pkl).model
    missing = VAEDecoder(path=tmp_path / "nope")
    assert "not found" in (missing.unavailable_reason() or "")
    assert not missing.info().available


def test_latents_with_the_wrong_channel_count_are_refused(vae_folders):
    _, folder = vae_folders["AutoencoderKL"]
    with pytest.raises(DecoderError, match="channels"):
        VAEDecoder(path=folder).decode(_batch(torch.zeros(1, 16, 4, 4)), seed=0)


def test_default_backend_is_the_embedded_zoo_vae():
    dec = VAEDecoder()
    assert dec.backend == "embedded"
    assert dec.folder.name == "vae" and dec.folder.parent.name == "weights"


def test_embedded_backend_loads_through_the_zoo_loader(vae_folders):
    model, folder = vae_folders["AutoencoderKL"]
    emb = VAEDecoder(backend="embedded", path=folder)
    dif = VAEDecoder(backend="diffusers", path=folder)
    z = torch.randn(1, 4, 4, 4)
    assert emb.backend == "embedded"
    torch.testing.assert_close(emb.decode(_batch(z), 0), dif.decode(_batch(z), 0), atol=1e-6, rtol=0)
