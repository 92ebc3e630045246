"""Contract: qa's ``upstream`` PiD backend against the real nv-tlabs/PiD code (``QA_PID_REPO``).

A tiny random-initialised PiD student (upstream's ``pid_sr4x`` net shrunk by Hydra overrides), a random Flux VAE
file and a random Gemma-2 text encoder, all made in a temporary folder. Without CUDA, upstream's hard-coded
``cuda`` runs on the CPU through tests/upstream/cpu_shim.py. Skipped with the reason where no checkout is named.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch
from qa.errors import DecoderError
from tests.upstream.conftest import PidParts

pytestmark = pytest.mark.upstream


def _make(parts: PidParts, **kw: object):
    from qa.decoders.pid import make_pid
    from tests.upstream.tiny_pid import NET_OVERRIDES

    settings: dict[str, object] = dict(repo=parts.repo, checkpoint=parts.checkpoint, vae_path=parts.vae,
                                       text_encoder_path=parts.text_encoder, experiment_opts=NET_OVERRIDES)
    settings.update(kw)
    return make_pid(backend="upstream", **settings)


def _batch(z: torch.Tensor, captions: list[str] | None = None) -> DecodeBatch:
    n = len(z)
    size = (z.shape[-2] * 32, z.shape[-1] * 32)
    return DecodeBatch([f"c{i}" for i in range(n)], captions or ["a red cat"] * n, z, size)


@pytest.fixture(scope="module")
def loaded(pid_parts: PidParts, cpu_for_cuda: None):
    """The decoder with its model loaded, and the process state seen before and after loading."""
    dec = _make(pid_parts)
    assert dec.unavailable_reason() is None, dec.unavailable_reason()
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = True, False
    torch.manual_seed(1234)
    random.seed(5)
    np.random.seed(6)
    before = {"cwd": os.getcwd(), "path": list(sys.path), "offline": os.environ.get("HF_HUB_OFFLINE"),
              "flags": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)}
    dec.model  # noqa: B018 - loads
    after = {"cwd": os.getcwd(), "path": list(sys.path), "offline": os.environ.get("HF_HUB_OFFLINE"),
             "flags": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                       torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
             "draws": (torch.rand(3), random.random(), np.random.rand())}
    torch.manual_seed(1234)
    random.seed(5)
    np.random.seed(6)
    expected_draws = (torch.rand(3), random.random(), np.random.rand())
    return dec, before, after, expected_draws


def test_loading_leaves_the_process_as_it_was(loaded):
    """Upstream resets the seed to 0 and sets cudnn/TF32 flags; qa restores them, the cwd, sys.path and env."""
    _, before, after, expected = loaded
    for key in ("cwd", "path", "offline", "flags"):
        assert after[key] == before[key], key
    assert torch.equal(after["draws"][0], expected[0]) and after["draws"][1:] == expected[1:]


def test_decode_size_range_and_seeds(loaded):
    dec = loaded[0]
    z = torch.randn(2, 16, 2, 3, generator=torch.Generator().manual_seed(0))
    a, b, c = (dec.decode(_batch(z), seed=s) for s in (3, 3, 4))
    assert a.shape == (2, 3, 64, 96) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and float(a.min()) >= 0 and float(a.max()) <= 1 and float(a.std()) > 0.01
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 1e-3
    # a case does not depend on the other cases of its batch
    torch.testing.assert_close(dec.decode(_batch(z[1:]), seed=3), a[1:], atol=1e-5, rtol=0)


def test_latent_sigma_and_caption_each_change_the_output(loaded):
    dec = loaded[0]
    z = torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(1))
    ref = dec.decode(_batch(z), seed=0)
    moved = dec.decode(_batch(z + 0.5 * torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(2))), 0)
    assert float((ref - moved).abs().mean()) > 1e-3
    other_caption = dec.decode(_batch(z, ["a blue house"]), seed=0)
    assert float((ref - other_caption).abs().mean()) > 1e-4
    dec.degrade_sigma = 0.5
    try:
        noised = dec.decode(_batch(z), seed=0)
        assert torch.equal(noised, dec.decode(_batch(z), seed=0))
    finally:
        dec.degrade_sigma = 0.0
    assert float((ref - noised).abs().mean()) > 1e-3


def test_encoder_and_baseline_use_pids_vae(loaded, pid_parts: PidParts):
    from pid._src.tokenizers.flux_vae import AutoEncoder  # upstream's VAE, loaded here on its own
    from safetensors.torch import load_file

    dec = loaded[0]
    assert dec.scale == 4 and dec.encoder.factor == 32
    assert int(dec.model.vae_encoder.spatial_compression_factor) * dec.scale == dec.encoder.factor
    ref = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    z = dec.encoder.encode(ref)
    assert z.shape == (1, 16, 2, 2)
    vae = AutoEncoder().to(torch.bfloat16)
    vae.load_state_dict(load_file(str(pid_parts.vae)))
    with torch.no_grad():
        z_ref = vae.encode(F.avg_pool2d(ref, 4).mul(2).sub(1).to(torch.bfloat16)).float()
        y = vae.decode(z.to(torch.bfloat16)).float()
    torch.testing.assert_close(z, z_ref, atol=1e-2, rtol=1e-2)
    base = dec.baseline(_batch(z))
    expected = F.interpolate((y.clamp(-1, 1) + 1) / 2, size=(64, 64), mode="bicubic", align_corners=False)
    torch.testing.assert_close(base, expected.clamp(0, 1), atol=1e-3, rtol=0)
    assert dec.decode(_batch(z), seed=0).shape == ref.shape


def test_weights_sha256_covers_checkpoint_vae_and_text_encoder(loaded, pid_parts: PidParts, tmp_path: Path):
    import hashlib
    import shutil

    dec = loaded[0]
    files = [pid_parts.checkpoint, pid_parts.vae] + sorted(
        (p for p in pid_parts.text_encoder.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(pid_parts.text_encoder).as_posix())
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    assert dec.weights_sha256() == h.hexdigest()
    assert dec.encoder.sha256() == hashlib.sha256(pid_parts.vae.read_bytes()).hexdigest()
    te2 = shutil.copytree(pid_parts.text_encoder, tmp_path / "gemma2")
    cfg = json.loads((te2 / "tokenizer_config.json").read_text())
    (te2 / "tokenizer_config.json").write_text(json.dumps({**cfg, "padding_side": "left"}))
    assert _make(pid_parts, text_encoder_path=te2).weights_sha256() != dec.weights_sha256()


def test_qa_tables_match_pids_checkpoint_registry(pid_parts: PidParts):
    from qa.decoders import pid_upstream_env as env

    sys.path.insert(0, str(pid_parts.repo))
    try:
        from pid._src.inference.checkpoint_registry import PID_CHECKPOINT_REGISTRY
    finally:
        sys.path.remove(str(pid_parts.repo))
    theirs: dict[str, set[str]] = {}
    for backbone, kind in PID_CHECKPOINT_REGISTRY:
        theirs.setdefault(backbone, set()).add(kind)
    assert {b: set(t) for b, t in env.CHECKPOINT_TYPES.items()} == theirs
    for (backbone, kind), entry in PID_CHECKPOINT_REGISTRY.items():
        assert (8 if backbone == "siglip" else 4) == entry.pid_scale, (backbone, kind)


def test_steps_above_the_schedule_are_refused(pid_parts: PidParts, loaded):
    assert len(loaded[0].model.config.student_t_list) - 1 == 4
    with pytest.raises(DecoderError, match="schedule has 4 steps"):
        _make(pid_parts, steps=5)


def test_a_safetensors_checkpoint_is_a_decoder_error_naming_it(pid_parts: PidParts, cpu_for_cuda, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not read")
    dec = _make(pid_parts, checkpoint=bad)
    assert dec.unavailable_reason() is None  # it exists; loading says what is wrong with it
    with pytest.raises(DecoderError, match=r"model\.safetensors: PiD loads a \.pth file or a DCP folder"):
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)


def test_missing_vae_and_text_encoder_are_named(pid_parts: PidParts, cpu_for_cuda, tmp_path):
    no_vae = _make(pid_parts, vae_path=tmp_path / "nowhere" / "ae.safetensors")
    assert "nowhere/ae.safetensors: VAE file not found" in (no_vae.unavailable_reason() or "")
    with pytest.raises(DecoderError, match="nowhere/ae.safetensors"):
        no_vae.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    no_te = _make(pid_parts, text_encoder_path=tmp_path / "gemma-missing")
    assert "gemma-missing: no text encoder there" in (no_te.unavailable_reason() or "")
    with pytest.raises(DecoderError, match="gemma-missing"):
        no_te.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    unset = _make(pid_parts, text_encoder_path=None)
    assert "huggingface-cli download Efficient-Large-Model/gemma-2-2b-it" in (unset.unavailable_reason() or "")


def test_upstream_base_exceptions_become_decoder_errors(pid_parts: PidParts, cpu_for_cuda, tmp_path):
    """A broken DCP folder makes torch's DCP raise CheckpointException, a BaseException: qa names the folder."""
    dcp = tmp_path / "broken_dcp"
    (dcp / "model").mkdir(parents=True)
    (dcp / "model" / ".metadata").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DecoderError, match="metadata is a pickle"):
        _make(pid_parts, checkpoint=dcp).decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    dec = _make(pid_parts, checkpoint=dcp, trust_dcp=True)
    with pytest.raises(DecoderError, match="broken_dcp: PiD could not load it") as info:
        dec.decode(_batch(torch.zeros(1, 16, 2, 2)), seed=0)
    cause = info.value.__cause__
    assert type(cause).__name__ == "CheckpointException" and not isinstance(cause, Exception)
    assert os.getcwd() != str(pid_parts.repo)


@pytest.mark.parametrize(("sigma", "steps", "seed"), [(0.5, 4, 7), (0.0, 2, 3), (0.25, 1, 0)])
def test_decode_equals_pids_own_from_clean_path(pid_parts: PidParts, cpu_for_cuda, sigma, steps, seed):
    """Golden: qa's decode against PiD's from_clean sequence (``pid/_src/inference/from_clean.py:169-190``) run
    here on the same loaded model: ``add_noise`` (flux: flow-matching) with a CUDA generator seeded with the seed,
    bf16, ``generate_samples_from_batch(cfg_scale, num_steps, seed, shift, image_size)``, then
    ``(clamp(-1, 1) + 1) / 2``; one case at a time with the run's seed. Equal bit for bit: both sides run the same
    operations on the same inputs (the same-seed decodes above are asserted equal bit for bit as well)."""
    from pid._src.inference.decoder import add_noise  # imported by the loaded model (no path needed)

    dec = _make(pid_parts, degrade_sigma=sigma, steps=steps, cfg_scale=1.0)
    z = torch.randn(2, 16, 2, 3, generator=torch.Generator().manual_seed(11))
    captions = ["a red cat", "a blue house"]
    ours = dec.decode(_batch(z, captions), seed=seed)
    m = dec.model
    theirs = []
    for i in range(2):
        gen = torch.Generator(device="cuda").manual_seed(seed)
        latent = add_noise(z[i : i + 1].to("cuda").float(), float(sigma), gen, "flux").to(dtype=torch.bfloat16)
        data_batch = {
            m.config.input_caption_key: [captions[i]],
            "LQ_latent": latent.to(dtype=torch.bfloat16, device="cuda"),
            "degrade_sigma": torch.tensor([float(sigma)], device="cuda", dtype=torch.float32),
        }
        out = m.generate_samples_from_batch(data_batch, cfg_scale=1.0, num_steps=steps, seed=seed, shift=None,
                                            image_size=(64, 96))
        theirs.append((out[:, :, 0].float().cpu().clamp(-1, 1) + 1) / 2)
    expected = torch.cat(theirs)
    assert ours.shape == expected.shape == (2, 3, 64, 96)
    assert float(expected.std()) > 0.01 and float(expected.min()) < 0.4  # a real image, not a clipped one
    assert torch.equal(ours, expected), float((ours - expected).abs().max())


def test_a_checkpoint_whose_keys_do_not_fit_is_refused(pid_parts: PidParts, cpu_for_cuda, tmp_path: Path):
    """PiD loads with strict=False: a renamed or half-missing checkpoint would decode with random weights. qa
    refuses it naming the file and the counts; the right checkpoint (the other tests) loads and decodes."""
    sd = torch.load(pid_parts.checkpoint, weights_only=True)
    n = len(sd)
    renamed, half = tmp_path / "renamed.pth", tmp_path / "half.pth"
    torch.save({k.replace("net.", "net.renamed.", 1): v for k, v in sd.items()}, renamed)
    torch.save({k: sd[k] for k in sorted(sd)[: n // 2]}, half)
    z = torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(1))
    with pytest.raises(DecoderError) as info:
        _make(pid_parts, checkpoint=renamed).decode(_batch(z), seed=0)
    assert f"renamed.pth: does not fit PiD's flux/2k net: {n} of the net's {n} weights missing" in str(info.value)
    assert f"{n} unexpected keys (e.g. renamed." in str(info.value)
    with pytest.raises(DecoderError, match=rf"half.pth: does not fit .*: {n - n // 2} of the net's {n} weights "
                                           r"missing \(e.g. .*\); PiD would decode with random weights"):
        _make(pid_parts, checkpoint=half).decode(_batch(z), seed=0)
    no_lq = tmp_path / "no_lq.pth"
    torch.save({k: v for k, v in sd.items() if "lq_proj" not in k}, no_lq)
    with pytest.raises(DecoderError, match="no_lq.pth: .*no LQ-projection .lq_proj. weights"):
        _make(pid_parts, checkpoint=no_lq).decode(_batch(z), seed=0)
    good = _make(pid_parts).decode(_batch(z), seed=0)
    assert good.shape == (1, 3, 64, 64) and float(good.std()) > 0.01


def _save_dcp(state: dict[str, torch.Tensor], folder: Path) -> Path:
    import warnings

    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "torch.distributed is disabled ... single process"
        dcp.save(state, checkpoint_id=str(folder / "model"))
    return folder


def test_a_dcp_folder_decodes_as_its_pth_and_one_missing_weights_is_refused(pid_parts: PidParts, cpu_for_cuda,
                                                                              tmp_path: Path):
    """PiD loads a DCP folder with allow_partial_load=True: weights it lacks keep their random initial values.
    The whole student as a DCP folder decodes as the .pth does; half of it, or only its EMA copy read without
    load_ema_to_reg, is refused naming the folder."""
    sd = torch.load(pid_parts.checkpoint, weights_only=True)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    whole = _save_dcp(sd, tmp_path / "whole_dcp")
    n = len(sd)
    half = _save_dcp({k: sd[k] for k in sorted(sd)[: n // 2]}, tmp_path / "half_dcp")
    ema_only = _save_dcp({k.replace("net.", "net_ema.", 1): v for k, v in sd.items()}, tmp_path / "ema_dcp")
    z = torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(1))
    from_pth = _make(pid_parts).decode(_batch(z), seed=0)
    from_dcp = _make(pid_parts, checkpoint=whole, trust_dcp=True).decode(_batch(z), seed=0)
    assert torch.allclose(from_dcp, from_pth, atol=2 / 255)
    with pytest.raises(DecoderError, match=rf"half_dcp: does not fit PiD's flux/2k net: {n - n // 2} of the "
                                           rf"net's {n} weights missing under net\.\*"):
        _make(pid_parts, checkpoint=half, trust_dcp=True).decode(_batch(z), seed=0)
    with pytest.raises(DecoderError, match=rf"ema_dcp: does not fit .*: {n} of the net's {n} weights missing"):
        _make(pid_parts, checkpoint=ema_only, trust_dcp=True).decode(_batch(z), seed=0)
