"""Typed records mirroring the store's tables: what the engine writes and the gate, report and CLI read.

Every query of qa lives in :mod:`qa.store` and speaks these records; nobody else writes SQL. Times are naive
UTC ``datetime`` (the convention of every ``*_at`` column); sha256 values are hex strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs`` (what gates, reports and the CLI read of a run).

    ``seeds``: the effective seeds stored with the run; ``scale``: output size / latent-native size of the
    decoder (None for runs stored before qa recorded it); ``track``: decode | upscale | generate."""

    run_id: str
    decoder: str
    track: str = ""
    status: str = ""
    reference_set: str = ""
    reference_set_sha256: str = ""
    seeds: tuple[int, ...] = ()
    weights_sha256: str = ""
    identity_sha256: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    backend: str = ""
    family: str = ""
    qa_version: str = ""
    git_commit: str = ""
    n_cases: int | None = None
    error: str = ""
    suite: str = ""
    device: str = ""
    scale: int | None = None


@dataclass(frozen=True)
class NewRun:
    """What :func:`qa.store.runs.insert_run` stores for a run that starts (status ``running``)."""

    run_id: str
    started_at: datetime
    suite: str
    decoder: str
    family: str
    backend: str
    track: str
    weights_sha256: str
    encoder_sha256: str
    reference_set: str
    reference_set_sha256: str
    seeds: list[int]
    qa_version: str
    git_commit: str
    device: str
    config: dict[str, Any]
    identity_sha256: str
    n_shards: int
    n_cases: int
    scale: int | None = None


@dataclass(frozen=True)
class CaseRecord:
    """One row of ``cases``: a reference item of one reference set (width/height are not recorded: None)."""

    reference_set_sha256: str
    case_id: str
    reference_set: str
    image_id: str
    file: str
    image_sha256: str
    caption: str


@dataclass(frozen=True)
class ResumeRow:
    """The columns of a stored run that decide whether it may be resumed (see ``engine.identity``)."""

    config_json: str
    status: str
    reference_set_sha256: str
    weights_sha256: str
    encoder_sha256: str
    seeds: str
    qa_version: str
    identity_sha256: str


@dataclass
class ResultRow:
    """One row of the ``results`` table (without the run id)."""

    case_id: str
    seed: int
    metric: str
    value: float | None
    status: str  # ok | missing | error
    detail: str = ""
    metric_version: str = ""


@dataclass(frozen=True)
class MetricRow:
    """One stored ``results`` row of a run, as read back (value None when missing or failed)."""

    case_id: str
    seed: int
    metric: str
    value: float | None
    status: str
    detail: str
    #: the metric's version when the row was computed ('' in a file that does not record it)
    metric_version: str = ""


@dataclass(frozen=True)
class SetResult:
    """One row of ``set_results``: a run's set-level value with its bootstrap interval, or why it is missing."""

    run_id: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: str  # ok | missing | error
    detail: str
    metric_version: str

    @classmethod
    def missing(cls, run_id: str, metric: str, status: str, detail: str, version: str) -> SetResult:
        """A row without a value (``status`` missing or error) and its reason."""
        return cls(run_id, metric, None, None, None, 0, status, detail, version)


@dataclass
class SetRow:
    """One row of ``set_results`` as a report shows it: value and bootstrap interval, or a status with its reason."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str
    detail: str
    #: the metric's version when the value was computed ('' where not read)
    metric_version: str = ""


@dataclass
class ImageRow:
    """One row of ``results`` of a run in a report (per image, per seed, per metric)."""

    run_id: str
    case_id: str
    seed: int
    metric: str
    value: float | None
    status: str
    detail: str


@dataclass(frozen=True)
class GateRecord:
    """One row of ``gates`` as written: the verdict of one run under one policy."""

    gate_id: str
    run_id: str
    baseline_run_id: str | None
    baseline_kind: str
    policy_sha256: str
    policy_json: str
    verdict: str
    details_json: str
    decided_at: datetime


@dataclass
class GateRow:
    """One row of ``gates`` as read; ``details`` is the parsed ``details_json`` (None when absent or not JSON)."""

    gate_id: str
    run_id: str
    baseline_run_id: str
    baseline_kind: str
    verdict: str
    details: Any
    details_error: str
    decided_at: datetime | None
    policy_sha256: str = ""


@dataclass(frozen=True)
class SignoffRow:
    """One sign-off as stored: its ``signoffs`` row joined with its ``signoff_proofs`` row (read as stored, not
    verified). ``format``: None for a row of a qa without signatures, 2 for a signed row without evidence, 3 for
    a row that signs its run's evidence (``evidence_sha256``, with the run's decoder and reference set)."""

    seq: int
    run_id: str
    reviewer: str
    decision: str
    note: str
    override: bool
    signed_at: datetime | None
    prev_hash: str = ""
    hash: str = ""
    format: int | None = None
    gate_id: str = ""
    policy_sha256: str = ""
    signer: str = ""
    signature: str = ""
    evidence_sha256: str = ""
    decoder: str = ""
    reference_set: str = ""
    reference_set_sha256: str = ""


@dataclass(frozen=True)
class NewSignoff:
    """A signed sign-off to append: its ``signoffs`` row and its ``signoff_proofs`` row (row ``format``)."""

    seq: int
    run_id: str
    reviewer: str
    decision: str
    note: str
    override: bool
    signed_at: datetime
    prev_hash: str
    hash: str
    gate_id: str
    policy_sha256: str
    signer: str
    signature: str
    evidence_sha256: str
    decoder: str
    reference_set: str
    reference_set_sha256: str
    format: int


@dataclass(frozen=True)
class RegionRow:
    """One of the strongest regions of a case's map (``regions``): the window ``[x, x + side) x [y, y + side)``
    in output pixels, its ``score`` (the map's mean there, the map's units), its ``rank`` (0 = strongest) and
    the box ``crop_*`` a reviewer is shown around it (whole stored tiles, so it is cut without re-encoding)."""

    case_id: str
    seed: int
    map_kind: str
    rank: int
    x: int
    y: int
    side: int
    score: float
    crop_x: int
    crop_y: int
    crop_w: int
    crop_h: int


@dataclass(frozen=True)
class TiledImage:
    """A full-resolution image of a case stored as lossless tiles (``pixels`` + ``tiles``).

    ``kind``: ``reference``, ``baseline``, ``output`` or ``map:<metric>``; ``image_sha256``: the hash of its
    decoded pixels, which names its tiles (an image stored by several runs is stored once); ``tiles``: (tile row,
    tile column) -> encoded tile (lossless WebP or PNG) of ``tile_side`` pixels (edge tiles are smaller), empty
    when read back without them; ``encode``: where the image is named by the hash of tiles the store held when
    its shard began (not encoded, ``tiles`` None), what encodes them after all if they were deleted before the
    shard's commit (a concurrent run's prune): the store calls it inside that commit."""

    case_id: str
    seed: int
    kind: str
    width: int
    height: int
    tile_side: int
    image_sha256: str
    tiles: dict[tuple[int, int], bytes] | None = None
    encode: Callable[[], dict[tuple[int, int], bytes]] | None = field(default=None, compare=False, repr=False)


def parse_json(text: object) -> tuple[Any, str]:
    """(parsed value, problem): None and '' for an empty column, None and the reason for text that is not JSON."""
    if text is None or str(text).strip() == "":
        return None, ""
    try:
        return json.loads(str(text)), ""
    except (TypeError, ValueError) as exc:
        return None, f"details_json is not valid JSON ({exc})"


def nan_none(x: float | None) -> float | None:
    """None for a NaN or None (the store keeps no NaN in interval columns)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x
