"""A small store built once for the report tests by the real engine: identity, bicubic (two runs, the first
shifted 10 days back) and a stochastic decoder named ``<script>alert(1)</script>``, over 4 tiles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa.store import Store
from tests.helpers import make_refset
from tests.report.helpers import MAP_METRIC, MISSING_METRIC, XSS, add_review_rows, build_store, registered


@dataclass
class ReportStore:
    """The store, its run ids per decoder (oldest first) and a scratch folder."""

    store: Store
    ids: dict[str, list[str]]
    root: Path


@pytest.fixture(scope="module")
def report_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportStore]:
    root = tmp_path_factory.mktemp("report")
    with registered():
        refset = make_refset(root / "set", n=4)
        store = Store(root / "qa.duckdb")
        ids = build_store(store, refset, ["identity", "bicubic", XSS], ["psnr", "ssim", MAP_METRIC, MISSING_METRIC],
                          {"bicubic": 2})
        add_review_rows(store, ids)
        yield ReportStore(store, ids, root)
