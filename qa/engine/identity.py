"""What a run is: the fields that decide its numbers (its identity: decoder weights and settings, encoder,
reference set, seeds, metrics, and the hash of qa's and the decoder's code), and the checks a run's inputs must
pass before it starts or resumes (seeds, unique case ids, an unchanged identity)."""

from __future__ import annotations

import json

from qa import __version__
from qa.decoders.base import Decoder
from qa.engine import provenance
from qa.engine.provenance import identity_sha256
from qa.engine.shard import effective_seeds
from qa.errors import ManifestError, QAError
from qa.metrics.base import Metric
from qa.refset.manifest import ReferenceSet
from qa.store.records import ResumeRow

#: most seeds one run may decode (each seed is a full pass over the set)
MAX_SEEDS = 64


def check_seeds(seeds: list[int]) -> list[int]:
    """The seeds of a run: 1..MAX_SEEDS distinct integers >= 0 (QAError otherwise)."""
    if not seeds:
        raise QAError("a run needs at least one seed", "pass --seeds N with N >= 1")
    if len(seeds) > MAX_SEEDS:
        raise QAError(f"{len(seeds)} seeds requested; at most {MAX_SEEDS} per run",
                      f"pass --seeds N with 1 <= N <= {MAX_SEEDS}")
    if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in seeds) or len(set(seeds)) != len(seeds):
        raise QAError(f"seeds must be distinct integers >= 0, got {seeds!r}")
    return list(seeds)


def check_unique_ids(refset: ReferenceSet) -> None:
    """ManifestError naming both rows of every duplicated id: a run needs one result per case id."""
    if refset.duplicates:
        raise ManifestError(f"reference set {refset.name!r} has duplicate ids: " + "; ".join(refset.duplicates),
                            "give each row its own id (or rebuild the manifest with `qa refset build FOLDER`)")



def identity_fields(decoder: Decoder, refset: ReferenceSet, metrics: list[Metric], seeds: list[int]) -> dict[str, object]:
    """The fields that decide a run's numbers; their hash (``identity_sha256``) lets a finished run be reused.
    ``code_sha256`` is the content hash of qa's source and the decoder's (:func:`qa.engine.provenance.code_sha256`):
    a run made by other code is neither reused nor resumed."""
    encoder = decoder.encoder
    return {
        "decoder": decoder.name, "family": decoder.family, "backend": decoder.backend,
        "weights_sha256": decoder.weights_sha256(), "encoder_sha256": encoder.sha256() if encoder else "",
        "reference_set_sha256": refset.sha256, "seeds": seeds, "settings": decoder.settings,
        "metrics": sorted((m.name, m.version) for m in metrics),
        "code_sha256": provenance.code_sha256(decoder),
    }


def base_identity_sha256(fields: dict[str, object]) -> str:
    """The identity without the metric list: runs that differ only in their metrics decode the same images, so a
    finished run with more metrics can stand in for one with fewer (see :func:`qa.engine.plan.find_reusable`)."""
    return identity_sha256({k: v for k, v in fields.items() if k != "metrics"})


def identity_changes(stored: ResumeRow, cfg: dict, decoder: Decoder, refset: ReferenceSet,
                     metrics: list[Metric]) -> list[str]:
    """What differs between a stored run (its identity columns and its config ``cfg``) and the decoder, reference
    set and metrics now."""
    seeds = effective_seeds(decoder, list(cfg.get("seeds") or []))
    now = identity_fields(decoder, refset, metrics, seeds)
    out = []
    if now["weights_sha256"] != stored.weights_sha256:
        out.append(f"the decoder's weights changed (sha256 {stored.weights_sha256[:12]} at the start, "
                   f"{str(now['weights_sha256'])[:12]} now)")
    if now["encoder_sha256"] != stored.encoder_sha256:
        out.append(f"the encoder changed (sha256 {stored.encoder_sha256[:12]} -> {str(now['encoder_sha256'])[:12]})")
    if refset.sha256 != stored.reference_set_sha256:
        out.append(f"reference set {refset.name!r} changed since the run started")
    if json.loads(stored.seeds or "[]") != seeds:
        out.append(f"the seeds differ (run: {stored.seeds}, now: {seeds})")
    stored_versions = cfg.get("metric_versions")
    versions = {m.name: m.version for m in metrics}
    if stored_versions is not None and stored_versions != versions:
        diff = sorted(k for k in set(stored_versions) | set(versions) if stored_versions.get(k) != versions.get(k))
        out.append(f"metric versions changed ({', '.join(diff)})")
    if stored.qa_version != __version__:
        out.append(f"qa version changed ({stored.qa_version} -> {__version__})")
    stored_code = str(cfg.get("code_sha256") or "")
    if stored_code != now["code_sha256"]:
        out.append("qa's code or the decoder's code changed since the run started (source sha256 "
                   f"{stored_code[:12] or 'not recorded'} -> {str(now['code_sha256'])[:12]}): start a new run")
    if not out and identity_sha256(now) != stored.identity_sha256:
        out.append("the decoder's settings changed (same weights, different configuration)")
    return out
