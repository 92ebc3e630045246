"""`qa diff` says why numbers are absent (audit D7): once, above the table, when A and B ran on other reference sets
(or share no image), naming both sets, in text, Markdown and JSON; and per metric the stored reason of its missing
per-image rows (weights absent and the fix), not just "no paired values". Also: no output of a gate or a diff
prints a negative zero (audit D3)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil

import pytest

from qa.cli.main import main
from qa.gate.formats import _num
from qa.gate.result import CheckResult
from qa.hashing import sha256_file
from qa.refset.manifest import write_manifest
from tests.gate.helpers import register
from tests.helpers import make_refset

REASON = "weights 'fake-net' are not installed here"  # tests.gate.helpers.NeedsWeights


def _qa(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """bicubic x4 and x2 on set 'one' (3 tiles), bicubic x4 on set 'two' (the same pictures under other ids);
    metrics psnr and needs_weights (every row missing: its weights are absent)."""
    register()
    root = tmp_path_factory.mktemp("diffreasons")
    one = make_refset(root / "one", n=3)
    two = root / "two"
    two.mkdir()
    items = []
    for i, tile in enumerate(sorted(one.glob("*.png"))):
        shutil.copyfile(tile, two / f"other{i}.png")
        items.append({"id": f"other{i}", "file": f"other{i}.png", "caption": "", "licence": "test", "source": "test",
                      "sha256": sha256_file(two / f"other{i}.png")})
    write_manifest(two, items)
    db = str(root / "qa.duckdb")
    ids = {"db": db}
    for key, refset, extra in (("a", one, []), ("b", one, ["--set", "factor=2"]), ("c", two, [])):
        rc, out, err = _qa("run", "--decoder", "bicubic", "--reference-set", str(refset), *extra,
                           "--metrics", "psnr,needs_weights", "--db", db, "--no-progress")
        assert rc == 0, err
        ids[key] = out.strip()
    return ids


def test_missing_per_image_rows_give_their_stored_reason(world: dict[str, str]) -> None:
    rc, out, err = _qa("diff", world["a"], world["b"], "--db", world["db"], "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    rows = {m["metric"]: m for m in doc["metrics"]}
    assert REASON in rows["needs_weights"]["note"] and "qa weights fetch fake-net" in rows["needs_weights"]["note"]
    assert rows["needs_weights"]["note"].count(REASON) == 1  # both runs share it: said once
    assert rows["psnr"]["n"] == 3 and rows["psnr"]["note"] == ""
    assert doc["note"] == "" and doc["reference_sets"] == {"a": "one", "b": "one"}  # same set: nothing to say
    rc, out, _ = _qa("diff", world["a"], world["b"], "--db", world["db"])
    assert rc == 0 and "no paired values" not in out and REASON in out and "\nnote:" not in out


def test_other_reference_sets_are_said_once_naming_both(world: dict[str, str]) -> None:
    rc, out, err = _qa("diff", world["a"], world["c"], "--db", world["db"])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("note: A and B ran on different reference sets: A on 'one', B on 'two'")
    assert "share no image" in lines[1] and out.count("different reference sets") == 1
    psnr = next(line for line in lines if line.startswith("psnr "))
    assert psnr.endswith("no image has a value in both runs")
    rc, out, _ = _qa("diff", world["a"], world["c"], "--db", world["db"], "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and doc["reference_sets"] == {"a": "one", "b": "two"}
    assert "different reference sets" in doc["note"] and "'one'" in doc["note"] and "'two'" in doc["note"]
    rc, out, _ = _qa("diff", world["a"], world["c"], "--db", world["db"], "--format", "markdown")
    assert rc == 0 and out.count("**Note:** A and B ran on different reference sets: A on 'one', B on 'two'") == 1


def test_a_metric_only_one_run_stored_says_which(world: dict[str, str]) -> None:
    rc, out, err = _qa("diff", world["a"], world["b"], "--metrics", "psnr,ssim", "--db", world["db"],
                       "--format", "json")
    assert rc == 0, err
    assert {m["metric"]: m["note"] for m in json.loads(out)["metrics"]}["ssim"] == "no value stored"


def test_no_negative_zero_in_gate_or_diff_numbers() -> None:
    r = CheckResult("psnr", "baseline", "pass", "", diff_mean=0.0, diff_ci=(0.0, 0.0))
    assert r.worse_by == 0.0 and math.copysign(1.0, r.worse_by) == 1.0
    assert r.worse_by_ci is not None and all(math.copysign(1.0, x) == 1.0 for x in r.worse_by_ci)
    assert "-0" not in json.dumps({k: v for k, v in r.to_dict().items() if k.startswith("worse_by")})
    assert _num(-0.0) == "0"  # the gate's Markdown table
