"""Report audit H4 (2026-12-07): "What changed" and the summary compared a decoder's latest run with its approved
or previous run made on other images under the same set name (means over 30 images against 32: "better by
0.03 dB" because two images were dropped), where `qa gate` refuses ("no images pair")."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from qa.cli.main import main
from qa.gate.evaluate import gate_run
from qa.gate.policy import default_policy_path, load_policy
from qa.gate.signoff import record_signoff
from qa.hashing import sha256_file
from qa.refset.manifest import load_reference_set, write_manifest
from qa.report.build import write_report
from qa.store import Store
from qa.store import runs as store_runs
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset


def _run(root: Path, db: Path) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr,ssim", "--db",
                     str(db), "--no-progress"]) == 0
    return out.getvalue().strip()


def test_runs_on_other_images_of_the_same_set_name_are_not_compared(tmp_path: Path) -> None:
    root = make_refset(tmp_path / "default", n=4)
    db = tmp_path / "qa.duckdb"
    first = _run(root, db)
    store = Store(db)
    key, trusted = make_reviewer(tmp_path, "ana")
    assert gate_run(store, first, load_policy(default_policy_path("upscale")), "none", trusted=trusted).verdict
    record_signoff(store, first, "ana", "approve", "first release", key=key, trusted=trusted, override=True)
    # the same set name, other images: one tile replaced, one dropped
    tile = np.asarray(Image.open(root / "tile00.png"))[::-1].copy()
    Image.fromarray(tile).save(root / "tile00.png")
    items = [{"id": i.id, "file": i.file, "sha256": sha256_file(root / i.file)}
             for i in load_reference_set(root).items if i.id != "tile03"]
    write_manifest(root, items)
    second = _run(root, db)
    with store.snapshot() as db:
        runs = {r.run_id: r for r in store_runs.runs_in_window(db, None, None)}
    assert runs[first].reference_set_sha256 != runs[second].reference_set_sha256
    html = write_report(store, out=tmp_path / "r.html", trusted=trusted).read_text()
    changes = html[html.index("What changed"):]
    assert f"<code>{second}</code> against" not in changes  # no unpaired means of other images
    assert "no earlier finished run of bicubic on the same reference images" in changes
    assert "on other images of set default" in html and "not compared" in html  # the approved run, with why


def test_failed_cases_are_counted_in_the_summary_and_named_in_the_headline(tmp_path: Path) -> None:
    """Report audit M1: the summary's cases column showed the planned 32 for a run with 2 failed cases, and with
    that run ungated the headline read "No failed checks"."""
    from tests.helpers import register_test_decoders

    register_test_decoders()
    root = make_refset(tmp_path / "set", n=4)
    db = tmp_path / "qa.duckdb"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["run", "--decoder", "raising", "--reference-set", str(root), "--metrics", "psnr", "--db", str(db),
              "--no-progress"])  # tile02 raises
    html = write_report(Store(db), out=tmp_path / "r.html").read_text()
    assert "(1 failed)" in html and "1 of 4 cases failed" in html
    assert "No failed checks" not in html


def test_a_run_that_did_not_finish_is_named_not_taken_as_the_latest(tmp_path: Path) -> None:
    """Report audit M2: a run killed outright stays 'running'; the report took it as the decoder's latest (its
    "What changed" read "not computed in this run" 31 times)."""
    root = make_refset(tmp_path / "set", n=3)
    db = tmp_path / "qa.duckdb"
    first = _run(root, db)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr", "--db",
                     str(db), "--no-progress"]) == 0  # other metrics: a new run
    store = Store(db)
    killed = store.query("select run_id from runs where run_id != ?", [first])[0][0]
    with store.transaction() as con:  # what a SIGKILL leaves: the row says running, nobody runs it
        con.execute("update runs set status = 'running', finished_at = null where run_id = ?", [killed])
    html = write_report(store, out=tmp_path / "r.html").read_text()
    summary = html[html.index('id="summary"'):html.index('id="changes"')]
    assert f"<code>{first}</code>" in summary and "newer runs that did not finish" in summary
    assert f"<code>{killed}</code> (running" in summary
