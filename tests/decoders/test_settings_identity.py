"""Every constructor argument that can change a decoder's pixels is one of its ``settings``, so it enters the
run's identity: a run with another value is a new run, never a reuse or a resume of the old one.

Found reading the upstream PiD adapter: ``cfg_scale``, ``shift``, ``dtype``, ``experiment``, ``config_file``,
``experiment_opts`` and ``load_ema_to_reg`` changed its output but not its settings, so `qa run --decoder pid-up
--set cfg_scale=2` reused the finished cfg_scale = 1 run and reported its numbers.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import qa.decoders as decoders_pkg
from qa.decoders.base import Decoder
from qa.engine.identity import identity_sha256

#: arguments that are not settings, with the reason they cannot change the pixels of a run of these weights
NOT_SETTINGS = {
    "path": "a file or folder: its content is the run's weights_sha256, not its name",
    "vae_path": "a file: its content is in weights_sha256 (the upstream PiD also names it in its settings)",
    "ldm_path": "a file: its content is in weights_sha256", "l2p_path": "a file: its content is in weights_sha256",
    "pid_path": "a file: its content is in weights_sha256",
    "threads": "ncnn's CPU thread count: the same pixels (test_esrgans_thread_count_changes_no_pixel below)",
    "trust_dcp": "permission to load a DCP checkpoint folder, not what it computes",
}
#: arguments a class takes for its family but ignores in its own configuration, by class
IGNORED_HERE = {
    "LDMVAEDecoder": {"pid_steps", "degrade_sigma", "source_cfg_scale"},  # no PiD stage; its own LDM's cfg_scale
    "LDMPiDDecoder": {"source_cfg_scale"},  # its own LDM: cfg_scale is the one used
    "L2PMiniDecoder": {"pid_steps", "degrade_sigma"},  # no PiD stage in the default configuration
}


def _decoder_classes() -> list[type[Decoder]]:
    found: dict[str, type[Decoder]] = {}
    for info in pkgutil.iter_modules(decoders_pkg.__path__):
        module = importlib.import_module(f"qa.decoders.{info.name}")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, Decoder) and obj is not Decoder
                    and obj.__module__ == module.__name__ and not inspect.isabstract(obj)):
                found[obj.__name__] = obj
    return [found[k] for k in sorted(found)]


def _arguments(cls: type[Decoder]) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in ("self", "name", "device") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def test_the_classes_are_found() -> None:
    names = {c.__name__ for c in _decoder_classes()}
    assert {"UpstreamPiD", "L2PUpstreamDecoder", "EmbeddedPiD", "TAESDDecoder", "ESRGANDecoder"} <= names


@pytest.mark.parametrize("cls", _decoder_classes(), ids=lambda c: c.__name__)
def test_every_argument_that_changes_pixels_is_a_setting(cls: type[Decoder]) -> None:
    decoder = cls()
    ignored = IGNORED_HERE.get(cls.__name__, set())
    missing = [p.name for p in _arguments(cls)
               if p.name not in decoder.settings and p.name not in NOT_SETTINGS and p.name not in ignored]
    assert not missing, f"{cls.__name__}: arguments not in its settings (so not in a run's identity): {missing}"


CHANGES = {"cfg_scale": 2.0, "shift": 3.0, "dtype": "float32", "experiment": "other_exp",
           "config_file": "/tmp/other.py", "experiment_opts": ["model.config.x=1"], "load_ema_to_reg": True,
           "steps": 2, "degrade_sigma": 0.3}


@pytest.mark.parametrize("argument", sorted(CHANGES))
def test_an_upstream_pid_run_with_another_value_is_another_run(argument: str) -> None:
    from qa.decoders.pid_upstream import UpstreamPiD

    base, other = UpstreamPiD(), UpstreamPiD(**{argument: CHANGES[argument]})
    assert identity_sha256({"settings": base.settings}) != identity_sha256({"settings": other.settings})


def test_a_dtype_given_as_a_torch_dtype_is_the_same_setting_as_its_name() -> None:
    import torch

    from qa.decoders.pid_upstream import UpstreamPiD

    assert UpstreamPiD(dtype=torch.bfloat16).settings["dtype"] == UpstreamPiD().settings["dtype"] == "bfloat16"


def test_esrgans_thread_count_changes_no_pixel() -> None:
    """Why ``threads`` is not a setting: 1 and 2 ncnn threads give the same bytes."""
    import numpy as np
    import torch
    from skimage import data

    from qa.decoders.base import DecodeBatch
    from qa.decoders.esrgan import ESRGANDecoder

    ref = torch.from_numpy(data.astronaut()[100:164, 150:214].astype(np.float32) / 255).permute(2, 0, 1)[None]
    outs = []
    for threads in (1, 2):
        dec = ESRGANDecoder(model="animevideov3-x4", threads=threads)
        low = dec.encoder.encode(ref.contiguous())
        outs.append(dec.decode(DecodeBatch(case_ids=["a"], captions=[""], latents=low, size=(64, 64)), seed=0))
    assert torch.equal(outs[0], outs[1])
