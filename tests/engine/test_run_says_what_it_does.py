"""Scale audit M2/M3 (2026-12-07): at 2K-4K a shard decodes for minutes and the bar sat at 0/N with nothing said
(users could not tell it from a hang), and a run's id was printed only when it ended, so a run stopped before that
(Ctrl-C, a CI cancel, an OOM kill) left no id to `qa run --resume` in the log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.records import RunInfo
from tests.helpers import make_refset


class StopsOnSecondShard(BicubicDecoder):
    """Bicubic x4 whose process is stopped (as Ctrl-C does) while its second shard decodes."""

    family = "stops-on-second-shard"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if "tile02" in batch.case_ids:  # the second shard's first case (shards of 2 in manifest order)
            raise KeyboardInterrupt
        return super().decode(batch, seed)


def interrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progress: bool) -> tuple[Store, RunInfo, Path]:
    """A run of 4 cases in shards of 2 stopped while its second shard decodes: (store, run, reference set)."""
    DECODERS.names()
    monkeypatch.setitem(DECODERS._targets, "stops-on-second-shard", StopsOnSecondShard)  # noqa: SLF001
    refset = make_refset(tmp_path / "set", n=4)
    store = Store(tmp_path / "qa.duckdb")
    with pytest.raises(KeyboardInterrupt):
        RunEngine(store).start(RunConfig(decoder="stops-on-second-shard", reference_set=str(refset),
                                         metrics=["psnr"], seeds=[0], batch_size=2, shard_size=2, progress=progress))
    run = store_runs.latest_run(store, "stops-on-second-shard")
    assert run is not None and run.status == "interrupted"
    return store, run, refset


def test_the_run_id_is_said_before_the_run_can_stop_and_the_bar_says_each_shards_stage(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, run, _ = interrupted_run(tmp_path, monkeypatch, progress=True)
    err = capsys.readouterr().err
    lines = [s for s in re.split(r"[\r\n]", err) if s.strip()]
    said = [i for i, s in enumerate(lines) if s.startswith(f"qa: run {run.run_id} (stops-on-second-shard): 4 case(s) "
                                                            "in 2 shard(s) to do")]
    first_bar = next(i for i, s in enumerate(lines) if "case/s" in s)
    assert said and said[0] < first_bar  # the id comes before the first shard
    stages = [m.group(1) for s in lines if (m := re.search(r"(shard \d/\d: \w+)", s))]
    assert stages.index("shard 1/2: decoding") < stages.index("shard 1/2: scoring") < stages.index("shard 2/2: decoding")
    assert "compiles the CPU kernels" in err  # said once, until a case is scored
    assert not any("compiles" in s for s in lines if "shard 2/2" in s)
    assert f"qa run --resume {run.run_id}" in err
