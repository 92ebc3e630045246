"""What decoders declare for the engine (read instead of the track name or the baseline's signature)."""

from __future__ import annotations

import inspect

import pytest

from qa.decoders.catalog import DECODERS


@pytest.mark.parametrize(("name", "takes_latents", "aligned"), [
    ("bicubic", True, True), ("vae", True, True), ("pid", True, True), ("ldm+vae", False, False), ("l2p", False, False),
])
def test_decoders_declare_their_inputs_and_reference_alignment(name: str, takes_latents: bool, aligned: bool) -> None:
    """Latents are encoded for decoders that take them; full-reference metrics apply to aligned outputs."""
    dec = DECODERS.create(name, name=name)
    assert (dec.decodes_latents, dec.reference_aligned) == (takes_latents, aligned)


def test_every_adapter_baseline_takes_the_seed() -> None:
    """``baseline(batch, seed)`` on every adapter in qa/decoders: the engine always passes the output's seed."""
    import importlib
    import pkgutil

    import qa.decoders
    from qa.decoders.base import Decoder

    for mod in pkgutil.iter_modules(qa.decoders.__path__):
        importlib.import_module(f"qa.decoders.{mod.name}")
    seen, stack = [], list(Decoder.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("qa.decoders.") and "baseline" in vars(cls):
            seen.append(cls.__name__)
            assert list(inspect.signature(cls.baseline).parameters)[:3] == ["self", "batch", "seed"], cls
    assert len(seen) >= 6  # vae, taesd, pid (2), esrgan, simple, l2p (2), ...
