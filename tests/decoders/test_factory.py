"""Decoder configuration ([tool.qa.decoders.NAME] / qa.toml), name resolution and listing."""

from __future__ import annotations

import shutil

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.esrgan import ESRGANDecoder
from qa.decoders.factory import list_decoders, load_decoder_configs, make_decoder
from qa.decoders.pid import EmbeddedPiD
from qa.decoders.pid_upstream import UpstreamPiD
from qa.decoders.vae import VAEDecoder
from qa.errors import UnknownNameError
from qa.settings import ConfigError


def test_pyproject_entry_configures_a_vae_folder_relative_to_the_file(tmp_path, vae_folders, monkeypatch):
    model, folder = vae_folders["AutoencoderKL"]
    shutil.copytree(folder, tmp_path / "weights" / "kl")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.qa.decoders.my-vae]\nfamily = "vae"\npath = "weights/kl"\n'
    )
    monkeypatch.chdir(tmp_path)  # the default root is the working directory
    dec = make_decoder("my-vae")
    assert isinstance(dec, VAEDecoder) and dec.name == "my-vae" and dec.backend == "diffusers"
    assert dec.folder == (tmp_path / "weights" / "kl").resolve()
    z = torch.randn(1, 4, 4, 4)
    out = dec.decode(DecodeBatch(["a"], [""], z), seed=0)
    with torch.no_grad():
        torch.testing.assert_close(out, ((model.decode(z).sample + 1) / 2).clamp(0, 1), atol=1e-5, rtol=1e-5)


def test_qa_toml_overrides_pyproject_and_reconfigures_a_builtin(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.qa.decoders.pid]\nbackend = "embedded"\nsteps = 2\n')
    (tmp_path / "qa.toml").write_text(
        '[decoders.pid]\nbackend = "upstream"\ncheckpoint = "ckpt/model_ema_bf16.pth"\nbackbone = "sd3"\n'
        "degrade_sigma = 0.2\n"
    )
    cfgs = load_decoder_configs(tmp_path)
    assert cfgs["pid"].family == "pid" and cfgs["pid"].source == tmp_path / "qa.toml"
    dec = make_decoder("pid", root=tmp_path)
    assert isinstance(dec, UpstreamPiD) and dec.backbone == "sd3" and dec.degrade_sigma == 0.2
    assert dec.checkpoint == (tmp_path / "ckpt" / "model_ema_bf16.pth").resolve()
    # without configuration the same name is the embedded default
    assert isinstance(make_decoder("pid", root=tmp_path / "elsewhere"), EmbeddedPiD)


def test_registry_names_resolve_without_configuration(tmp_path):
    anime = make_decoder("esrgan-anime-x2", root=tmp_path)
    assert isinstance(anime, ESRGANDecoder) and anime.scale == 2 and anime.name == "esrgan-anime-x2"
    assert make_decoder("esrgan", root=tmp_path).model_name == "x4plus"
    assert make_decoder("vae", root=tmp_path).backend == "embedded"


def test_unknown_names_get_suggestions(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'esrgan'"):
        make_decoder("esrgn", root=tmp_path)
    (tmp_path / "qa.toml").write_text('[decoders.sdxl-vae]\nfamily = "vae"\npath = "x"\n')
    with pytest.raises(UnknownNameError, match="did you mean 'sdxl-vae'"):
        make_decoder("sdxl-vea", root=tmp_path)


def test_bad_configuration_is_reported_with_the_file(tmp_path):
    (tmp_path / "qa.toml").write_text("[decoders.x\nfamily = 1\n")
    with pytest.raises(ConfigError, match="qa.toml"):
        make_decoder("x", root=tmp_path)
    (tmp_path / "qa.toml").write_text('[decoders.x]\nfamily = "vea"\n')
    with pytest.raises(ConfigError, match="not registered"):
        make_decoder("x", root=tmp_path)
    (tmp_path / "qa.toml").write_text('[decoders.x]\nfamily = "esrgan"\nmodle = "x4plus"\n')
    with pytest.raises(ConfigError, match="(?s)unknown setting 'modle'.*did you mean 'model'"):
        make_decoder("x", root=tmp_path)


def test_list_decoders_describes_everything_without_loading_weights(tmp_path):
    (tmp_path / "qa.toml").write_text(
        '[decoders.pid-real]\nfamily = "pid"\nbackend = "upstream"\n\n[decoders.broken]\nfamily = "esrgan"\nmodel = "x9"\n'
    )
    infos = {i.name: i for i in list_decoders(root=tmp_path)}
    assert {"identity", "bicubic", "vae", "pid", "esrgan", "esrgan-anime-x4", "pid-real", "broken"} <= set(infos)
    esr = infos["esrgan"]
    assert (esr.track, esr.scale, esr.stochastic, esr.backend, esr.available) == ("upscale", 4, False, "ncnn", True)
    pid = infos["pid"]
    assert (pid.track, pid.scale, pid.stochastic, pid.backend) == ("upscale", 2, True, "embedded")
    real = infos["pid-real"]
    assert not real.available and "PiD" in real.reason and real.backend == "upstream"
    broken = infos["broken"]
    assert not broken.available and "x9" in broken.reason and (broken.family, broken.track) == ("esrgan", "upscale")
    assert infos["vae"].track == "decode" and infos["vae"].inputs == ("latent",)
