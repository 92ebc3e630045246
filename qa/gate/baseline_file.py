"""Baselines that travel: ``qa baseline export`` writes the approved run's evidence and the signed sign-off
chain into one Parquet file; ``qa gate --baseline FILE`` and ``pytest --baseline=FILE`` verify it and gate against it.

Verifying a file, in order (any failure: :class:`GateError`, exit 2, naming what failed):

1. its bytes match the digest it was written with (one changed byte is found here);
2. its rows load into qa's schema (unknown tables or columns are refused);
3. its sign-off chain verifies against the trusted keys, ending at the head the file carries (signed by the
   last row's signer), like a store's chain against its anchor;
4. the candidate's decoder has a counting approval on the candidate's reference set in it, whose evidence
   digest recomputed from the file's rows matches the signed one;
5. the approved run finished (an approval of an unfinished run, recorded before qa refused one, is no baseline:
   ``qa baseline export`` refuses to write it, and a file that holds one is refused);
6. the approved run's reference content is the candidate's (both hashes named otherwise).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa import __version__
from qa.gate.approved import (
    Approved,
    approved_in_store,
    approved_run,
    no_approved_error,
    require_finished,
    require_same_content,
    resolve_trusted,
)
from qa.gate.data import GateError
from qa.gate.signing import TrustedKeys
from qa.gate.signoff_verify import check_chain
from qa.store import Store
from qa.store import baseline_file as store_file
from qa.store import runs as store_runs
from qa.store.db import Snapshot


def export_baseline(store: Store, decoder: str, out: Path, trusted: TrustedKeys | str | Path | None = None,
                    reference_set: str | None = None, thumbnails: bool = False) -> str:
    """Write the verified approved run of ``decoder`` (on ``reference_set``; default: the set of its latest
    approval) with its evidence and the sign-off chain to ``out``; returns a summary line. GateError, nothing
    written, when there is no verified approved run or it did not finish."""
    keys = resolve_trusted(trusted)
    if reference_set is None:
        from qa.gate.approved import approvals, store_chain

        check = store_chain(store, keys)
        sets = [r.reference_set for r in approvals(check) if r.decoder == decoder]
        if not sets:
            raise no_approved_error(check, decoder, "(any)", f"the store {store.path}")
        reference_set = sets[0]
    found, check = approved_in_store(store, decoder, reference_set, keys)
    if found is None:
        raise no_approved_error(check, decoder, reference_set, f"the store {store.path}")
    require_finished(found)  # a partial baseline must not travel to CI; nothing is written
    rows = store_file.export_rows(store, found.run.run_id, [found.row.gate_id] if found.row.gate_id else [],
                                  thumbnails)
    meta = {"format": store_file.FILE_FORMAT, "qa_version": __version__, "decoder": decoder,
            "reference_set": reference_set, "run_id": found.run.run_id, "approval_seq": found.row.seq,
            "exported_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
            "head": check.head, "thumbnails": thumbnails}
    digest = store_file.write_file(out, [("meta", meta, None), *rows])
    n_img = sum(1 for t, _, _ in rows if t == "image_digests")
    return (f"wrote {out}: approved run {found.run.run_id} of {decoder} on {reference_set!r} (sign-off seq "
            f"{found.row.seq} by {found.row.reviewer}), {sum(1 for t, _, _ in rows if t == 'results')} result rows, "
            f"{n_img} image hashes{' with thumbnails' if thumbnails else ''}, {len(check.rows)} sign-off rows; "
            f"file sha256 {digest}")


def _meta(db: Snapshot, path: Path) -> dict[str, Any]:
    rows = store_file.meta_rows(db)
    if len(rows) != 1:
        raise GateError(f"baseline file {path} holds {len(rows)} meta rows, not 1: not written by `qa baseline export`")
    try:
        meta = json.loads(rows[0])
        head = meta["head"]
        if not isinstance(head, dict) or not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
            raise ValueError("head")
    except (ValueError, KeyError, TypeError) as exc:
        raise GateError(f"baseline file {path}: its meta row is malformed ({exc})") from exc
    return dict(meta)


def load_baseline_file(path: Path) -> tuple[Snapshot, dict[str, Any]]:
    """The file's rows in an in-memory store, and its meta row, after its byte digest verified."""
    if not path.is_file():
        raise GateError(f"baseline file {path} does not exist", "write it with `qa baseline export --decoder NAME --out FILE`")
    _, problem = store_file.check_file_digest(path)
    if problem:
        raise GateError(problem, "restore the file (git checkout / revert), or export it again from the store that "
                                 "holds the approval")
    db = store_file.materialise(path, store_file.read_rows(path))
    return db, _meta(db, path)


def approved_from_file(path: Path, candidate: Any, trusted: TrustedKeys | str | Path | None = None) -> Approved:
    """The verified approved run in baseline file ``path`` for ``candidate`` (a RunInfo); GateError otherwise."""
    keys = resolve_trusted(trusted)
    db, meta = load_baseline_file(path)
    origin = f"baseline file {path}"
    check = check_chain(db, path, keys, anchor=(meta["head"], None, ""))
    found = approved_run(db, check, candidate.decoder, candidate.reference_set, origin)
    if found is None:
        held = f" (it holds {meta.get('decoder')!r} on {meta.get('reference_set')!r})" if meta.get("decoder") else ""
        err = no_approved_error(check, candidate.decoder, candidate.reference_set, origin + held)
        raise GateError(str(err).splitlines()[0], f"export the baseline of {candidate.decoder!r} with `qa baseline "
                        f"export --decoder {candidate.decoder} --out FILE` from the store that holds its approval")
    require_finished(found)
    require_same_content(found, candidate)
    return found


def file_summary(path: Path, trusted: TrustedKeys | str | Path | None = None) -> list[str]:
    """``qa baseline verify FILE``: what the file holds and whether it verifies (raises GateError otherwise)."""
    keys = resolve_trusted(trusted)
    db, meta = load_baseline_file(path)
    origin = f"baseline file {path}"
    check = check_chain(db, path, keys, anchor=(meta["head"], None, ""))
    found = approved_run(db, check, str(meta.get("decoder")), str(meta.get("reference_set")), origin)
    if found is None:
        raise no_approved_error(check, str(meta.get("decoder")), str(meta.get("reference_set")), origin)
    require_finished(found)
    run = store_runs.get_run(db, found.run.run_id)
    lines = [f"{path}: baseline of {meta.get('decoder')!r} on reference set {meta.get('reference_set')!r} "
             f"(content {run.reference_set_sha256 if run else '?'})",
             f"  approved: {found.describe()}",
             f"  chain: {len(check.rows)} sign-off(s), head seq {check.head['seq']} {check.head['hash']}"]
    lines += [f"  note: {f}" for f in check.findings + check.notes]
    return lines + ["baseline file verifies"]
