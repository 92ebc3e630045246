"""Issue 27, problem 4: a warning (or a library's log record) raised while a run's progress bar is drawn (weights load lazily, mid-run) is
written on its own line above the bar, never inside it."""

from __future__ import annotations

import logging
import re
import sys
import warnings
from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.store import Store
from tests.helpers import make_refset

WARNING = "planted: weights for this decoder were loaded from a fallback path"
LOGGED = "planted: some modules should be kept in float32"


class WarnsOnce(BicubicDecoder):
    """Bicubic x4 that warns on its second batch, as a lazily loaded model does once the bar is drawn."""

    family = "warns-once"

    def __init__(self, name: str | None = None, device: str = "cpu", **settings: object) -> None:
        super().__init__(name, device, **settings)
        self.calls = 0

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            warnings.warn(WARNING, UserWarning, stacklevel=1)
            logging.getLogger("qa_test_library").warning(LOGGED)  # a library logger with its own console handler
        return super().decode(batch, seed)


def test_warning_is_on_its_own_line_above_the_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    DECODERS.names()
    monkeypatch.setitem(DECODERS._targets, "warns-once", WarnsOnce)  # noqa: SLF001 - test-only registration
    refset = make_refset(tmp_path / "set", n=6)
    library = logging.getLogger("qa_test_library")
    handler = logging.StreamHandler(sys.stderr)  # like diffusers' and transformers' own handlers
    library.addHandler(handler)
    library.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        RunEngine(Store(tmp_path / "qa.duckdb")).start(RunConfig(
            decoder="warns-once", reference_set=str(refset), metrics=["psnr"], seeds=[0], batch_size=1,
            shard_size=2, progress=True))
    library.removeHandler(handler)
    err = capsys.readouterr().err
    segments = [s for s in re.split(r"[\r\n]", err) if s.strip()]
    hits = [s for s in segments if WARNING in s]
    assert len(hits) == 1, err
    assert "%|" not in hits[0] and "case" not in hits[0].split("UserWarning")[0], hits[0]  # no bar on its line
    assert any("%|" in s for s in segments)  # the bar was drawn
    logged = [s for s in segments if LOGGED in s]
    assert len(logged) == 1 and "%|" not in logged[0], err
