"""The local engine does not open the store while a shard is scored: the references' cached features are fetched
before each shard and what a shard computed is stored after it (qa.engine.shard_features)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.engine.shard import ShardOutput, ShardRunner
from qa.engine.shard_features import ShardFeatures
from qa.metrics.text import ocr
from qa.metrics.text.readings import READINGS
from qa.store import Store
from tests.helpers import make_refset

needs_ocr = pytest.mark.skipif(ocr.unavailable_reason() is not None, reason=str(ocr.unavailable_reason()))


@needs_ocr
def test_no_store_session_while_a_shard_scores_and_readings_are_kept(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    refset = make_refset(tmp_path / "set", n=3)
    store = Store(tmp_path / "qa.duckdb")
    scoring = [False]
    opened_while_scoring: list[bool] = []
    real_run, real_open = ShardRunner.run, Store._open

    def run(self: ShardRunner, cases: list) -> ShardOutput:
        scoring[0] = True
        try:
            return real_run(self, cases)
        finally:
            scoring[0] = False

    def open_(self: Store, read_only: bool):  # type: ignore[no-untyped-def]
        if scoring[0]:
            opened_while_scoring.append(read_only)
        return real_open(self, read_only)

    monkeypatch.setattr(ShardRunner, "run", run)
    monkeypatch.setattr(Store, "_open", open_)
    fetched: list[int] = []
    real_fetch = ShardFeatures.fetch
    monkeypatch.setattr(ShardFeatures, "fetch", lambda self, cases: (fetched.append(len(cases)),
                                                                      real_fetch(self, cases))[1])
    READINGS._memo.clear()
    before = READINGS.n_reference_reads
    RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["text_cer"],
                                     shard_size=2, progress=False))
    assert fetched == [2, 1]  # before each shard
    assert opened_while_scoring == []
    assert READINGS.n_reference_reads - before == 3
    assert store.query("select count(*) from features where extractor = 'ocr:tesseract'")[0][0] == 3
    # another run over the same references reads none of them again: their readings were stored after each shard
    READINGS._memo.clear()
    before = READINGS.n_reference_reads
    run_id = RunEngine(store).start(RunConfig(decoder="identity", reference_set=str(refset), metrics=["text_cer"],
                                              shard_size=2, progress=False))
    assert READINGS.n_reference_reads == before
    statuses = store.query("select status from results where run_id = ? and metric = 'text_cer'", [run_id])
    assert len(statuses) == 6 and {s for (s,) in statuses} == {"ok"} and opened_while_scoring == []  # 2 seeds
