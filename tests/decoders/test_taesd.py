"""The tiny-autoencoder family without its released weights: qa's layout against diffusers' independent
``AutoencoderTiny`` implementation (same weights, mapped by name), the published TAEF2 parameter counts, the
weights-only loader's refusals, and the weights store's TAEF2 entries and import checks."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import qa.weights as W
from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.taesd import TAESDDecoder, load_halves
from qa.decoders.taesd_layout import VARIANTS, build_decoder, build_encoder
from qa.decoders.vae import VAEDecoder
from qa.errors import DecoderError, QAError, WeightsMissingError
from tests.decoders.decoder_fixtures import smooth_images


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _batch(z: torch.Tensor) -> DecodeBatch:
    return DecodeBatch(case_ids=[str(i) for i in range(len(z))], captions=[""] * len(z), latents=z)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights store and empty caches."""
    for var, sub in (("HOME", ""), ("QA_WEIGHTS_DIR", "qa-weights"), ("TORCH_HOME", "torch"), ("HF_HOME", "hf")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


def test_taef2_layout_has_the_published_parameter_counts_and_shapes():
    v = VARIANTS["taef2"]
    enc, dec = build_encoder(v), build_decoder(v)
    assert (_params(enc), _params(dec)) == (1_338_528, 1_338_499)  # the counts the TAEF2 release states
    with torch.no_grad():
        z = enc(torch.rand(1, 3, 64, 48))
        assert z.shape == (1, 32, 8, 6)
        assert dec(z).shape == (1, 3, 64, 48)
    # the unpooled members are the same layout without the GroupNorm pools
    assert not any(".pool." in k for k in build_encoder(VARIANTS["taef1"]).state_dict())
    assert build_decoder(VARIANTS["taesd3"])[1].in_channels == 16


def _original_files(model, folder: Path, variant: str) -> Path:
    """Save a diffusers AutoencoderTiny's weights as the original release's two ``.pth`` state dicts (fp16, as
    released): encoder ``layers.i`` -> ``i``; decoder ``layers.i`` -> ``i+1`` (index 0 is the soft clamp)."""
    folder.mkdir(parents=True, exist_ok=True)
    sd = model.state_dict()
    enc = {k.removeprefix("encoder.layers."): v.half() for k, v in sd.items() if k.startswith("encoder.layers.")}
    dec = {}
    for k, v in sd.items():
        if k.startswith("decoder.layers."):
            idx, rest = k.removeprefix("decoder.layers.").split(".", 1)
            dec[f"{int(idx) + 1}.{rest}"] = v.half()
    torch.save(enc, folder / f"{variant}_encoder.pth")
    torch.save(dec, folder / f"{variant}_decoder.pth")
    return folder


@pytest.mark.parametrize("variant", ["taesd", "taef1"])
def test_layout_matches_diffusers_autoencodertiny_with_the_same_weights(tmp_path, variant):
    """qa's network and diffusers' (an independent implementation of the same family), loaded with the same
    weights, give the same latents and pixels; the diffusers folder also runs through the ``vae`` adapter."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    model = diffusers.AutoencoderTiny(latent_channels=VARIANTS[variant].channels).eval()
    with torch.no_grad():  # the released weights are fp16: round these the same way for both sides
        for p in model.parameters():
            p.copy_(p.half().float())
    folder = _original_files(model, tmp_path / "pth", variant)
    model.save_pretrained(str(tmp_path / "diffusers"), safe_serialization=True)

    ours = TAESDDecoder(variant=variant, path=folder)
    theirs = VAEDecoder(path=tmp_path / "diffusers")
    x = smooth_images(2, 64, seed=3)
    z_ours, z_theirs = ours.encoder.encode(x), theirs.encoder.encode(x)
    assert z_ours.shape == (2, VARIANTS[variant].channels, 8, 8)
    assert torch.allclose(z_ours, z_theirs, atol=1e-4, rtol=1e-4)
    out_ours, out_theirs = ours.decode(_batch(z_ours), 0), theirs.decode(_batch(z_ours), 0)
    assert float((out_ours - out_theirs).abs().max()) < 1e-4
    assert 0.0 <= float(out_ours.min()) and float(out_ours.max()) <= 1.0
    assert ours.weights_sha256() == hashlib.sha256((folder / f"{variant}_decoder.pth").read_bytes()).hexdigest()
    assert ours.encoder.sha256() == hashlib.sha256((folder / f"{variant}_encoder.pth").read_bytes()).hexdigest()


class _Payload:
    """Not a tensor: pickling it needs code to run at load time."""


def _save_taef2_shaped(folder: Path, enc: object | None = None, dec: object | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    v = VARIANTS["taef2"]
    torch.save(enc if enc is not None else build_encoder(v).state_dict(), folder / "taef2_encoder.pth")
    torch.save(dec if dec is not None else build_decoder(v).state_dict(), folder / "taef2_decoder.pth")
    return folder


def test_loader_refuses_pickled_code_non_state_dicts_and_other_layouts(tmp_path):
    v = VARIANTS["taef2"]
    ok = _save_taef2_shaped(tmp_path / "ok")
    enc, dec = load_halves(ok / "taef2_encoder.pth", ok / "taef2_decoder.pth", v)
    assert _params(enc) == 1_338_528 and not enc.training
    evil = _save_taef2_shaped(tmp_path / "evil", dec={"1.weight": _Payload()})
    with pytest.raises(DecoderError, match="taef2_decoder.pth"):
        load_halves(evil / "taef2_encoder.pth", evil / "taef2_decoder.pth", v)
    listed = _save_taef2_shaped(tmp_path / "list", enc=[torch.zeros(1)])
    with pytest.raises(DecoderError, match="not a state dict"):
        load_halves(listed / "taef2_encoder.pth", listed / "taef2_decoder.pth", v)
    # taef1 files (16 channels, no pools) asked for as taef2, and mismatched halves
    other = tmp_path / "taef1"
    other.mkdir()
    torch.save(build_encoder(VARIANTS["taef1"]).state_dict(), other / "taef2_encoder.pth")
    torch.save(build_decoder(VARIANTS["taef1"]).state_dict(), other / "taef2_decoder.pth")
    with pytest.raises(DecoderError, match="layout of taesd3"):
        load_halves(other / "taef2_encoder.pth", other / "taef2_decoder.pth", v)
    mixed = _save_taef2_shaped(tmp_path / "mixed", dec=build_decoder(VARIANTS["taesd"]).state_dict())
    with pytest.raises(DecoderError, match="32-channel latents, decoder takes 4"):
        load_halves(mixed / "taef2_encoder.pth", mixed / "taef2_decoder.pth", v)


def test_settings_and_inputs_are_checked(tmp_path):
    with pytest.raises(DecoderError, match="unknown variant"):
        TAESDDecoder(variant="taesd9")
    assert "needs `path`" in (TAESDDecoder(variant="taef1").unavailable_reason() or "")
    with pytest.raises(WeightsMissingError, match="needs `path`"):
        TAESDDecoder(variant="taef1").files()
    with pytest.raises(DecoderError, match="unknown setting"):
        TAESDDecoder(variant="taef2", scale=3)
    dec = TAESDDecoder(variant="taef2", path=_save_taef2_shaped(tmp_path / "w"))
    with pytest.raises(DecoderError, match="channels"):
        dec.decode(_batch(torch.zeros(1, 16, 4, 4)), 0)
    with pytest.raises(DecoderError, match="multiple of 8"):
        dec.encoder.encode(torch.zeros(1, 3, 20, 16))
    assert "not found" in (TAESDDecoder(variant="taef2", path=tmp_path / "none").unavailable_reason() or "")


def test_taef2_decoders_are_unavailable_with_the_fix_without_weights(home):
    for name in ("taef2", "taef2+esrgan"):
        reason = DECODERS.create(name, name=name).unavailable_reason() or ""
        assert "qa weights import" in reason and "taef2_decoder.pth" in reason and "taef2_encoder.pth" in reason


def test_store_knows_taef2_and_refuses_other_files(home):
    for half in ("encoder", "decoder"):
        s = W.KNOWN[f"taef2-{half}"]
        assert s.filename == f"taef2_{half}.pth" and s.licence.startswith("MIT") and len(s.sha256 or "") == 64
        assert s.url.endswith(f"madebyollin/taesd/raw/main/taef2_{half}.pth")
    fake = _save_taef2_shaped(home / "fake")  # right names and layout, other bytes
    out = io.StringIO()
    assert W.cli_import(str(fake / "taef2_decoder.pth"), out=out) == 1
    assert "refused" in out.getvalue() and "taef2-decoder" in out.getvalue()
    assert not (home / "qa-weights" / "taef2_decoder.pth").exists()


def test_import_refuses_a_pickle_that_is_not_a_plain_state_dict(home, monkeypatch):
    """Even a file whose sha256 a state-dict entry pins is refused unless it is a plain {name: tensor} dict."""
    wrapped, listed, plain = home / "wrapped.pth", home / "listed.pth", home / "plain.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, wrapped)
    torch.save([torch.zeros(2)], listed)
    torch.save({"w": torch.zeros(2)}, plain)
    known = dict(W.KNOWN)
    for i, f in enumerate((wrapped, listed, plain)):
        known[f"t{i}"] = replace(W.KNOWN["taef2-decoder"], name=f"t{i}", filename=f.name,
                                 sha256=hashlib.sha256(f.read_bytes()).hexdigest())
    monkeypatch.setattr("qa.weights.store.KNOWN", known)
    for f in (wrapped, listed):
        with pytest.raises(QAError, match="not a plain state dict"):
            W.import_file(f)
    assert W.import_file(plain)[0] == "t2"


def test_taesd_esrgan_pipeline_composes_its_two_networks(tmp_path):
    """The pipeline is exactly: tiny decode, then Real-ESRGAN; its baseline the same decode upsampled bicubically;
    its encoder area x4 then the tiny encoder (random taef2-shaped weights; the compact x4 model for speed)."""
    pytest.importorskip("ncnn", reason="ncnn is not installed (pip install ncnn)")
    from qa.decoders.taesd_esrgan import TAESDESRGAN

    pipe = TAESDESRGAN(variant="taef2", path=_save_taef2_shaped(tmp_path / "w"), model="animevideov3-x4", threads=1)
    if pipe.sr.unavailable_reason():
        pytest.skip(pipe.sr.unavailable_reason())
    x = smooth_images(1, 64, seed=5)
    enc = pipe.encoder
    z = enc.encode(x)
    assert (enc.factor, z.shape) == (32, (1, 32, 2, 2))
    assert torch.allclose(z, pipe.tae.encode_pixels(torch.nn.functional.avg_pool2d(x, 4)))
    batch = DecodeBatch(["a"], [""], latents=z, size=(64, 64))
    low = pipe.tae.decode_latents(z)
    out = pipe.decode(batch, 0)
    direct = pipe.sr.decode(DecodeBatch(["a"], [""], latents=low), 0)
    assert out.shape == (1, 3, 64, 64) and torch.equal(out, direct)
    bicubic = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.allclose(pipe.baseline(batch), bicubic)
    expect = hashlib.sha256(f"{pipe.tae.weights_sha256()}+{pipe.sr.weights_sha256()}".encode()).hexdigest()
    assert pipe.weights_sha256() == expect and enc.sha256() == pipe.tae.encoder_sha256()
    with pytest.raises(DecoderError, match="unknown setting"):
        TAESDESRGAN(variant="taef2", steps=3)
