"""Issue 27, problem 2: every image a worst-images check names reaches every output (text, Markdown, JSON, JUnit,
pytest's failure body, `qa status`, the report), folded but never cut; and one sign convention, "worse by"
(positive = worse), in all of them.

The world: blurry-bicubic (a planted loss of detail on every tile) gated against a bicubic run under a policy whose
worst-images rule allows no loss at all, so all 6 tiles are over their allowance (more than the 3 a message names).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qa.gate.evaluate import gate_run
from qa.gate.formats import outcome_dict, outcome_json, outcome_markdown
from qa.gate.policy import parse_policy
from qa.gate.status import status_output
from qa.gate.worse import FOLD_AT, worse_by
from qa.report.gates import checks_table
from tests.gate.test_gate_logic import (  # noqa: F401  (fixtures: a 6-tile store with bicubic and blurry runs)
    policy_path,
    reviewer_keys,
    store,
    world,
)
from tests.session.helpers import INNER, SUITES

STRICT = {"policy": {"track": "upscale", "n_boot": 500},
          "metrics": {"psnr": {"margin": 0.3, "image_margin": 0.0, "image_relative_margin": 0.0}}}
TILES = [f"tile{i:02d}" for i in range(6)]


@pytest.fixture
def outcome(world, store):  # noqa: ANN001, ANN201, F811
    runs = world["runs"]
    return gate_run(store, runs["blurry"], parse_policy(STRICT, "strict.toml"), baseline=runs["bicubic1"])


def _worst(outcome):  # noqa: ANN001, ANN202
    return next(r for r in outcome.results if r.kind == "worst_images")


def test_every_offending_image_is_in_text_markdown_and_json(outcome) -> None:  # noqa: ANN001
    r = _worst(outcome)
    assert r.verdict == "fail" and len(r.images) == 6 > FOLD_AT
    named = {im["case"] for im in r.images}
    assert named == set(TILES)
    # the one-line message names the first few and says where the rest are
    assert "(+3 more: all 6 listed below)" in r.message
    text = "\n".join(outcome.lines())
    for i, im in enumerate(r.images):
        assert f"image {i + 1}/6: {im['case']} " in text
    md = outcome_markdown(outcome)
    assert "psnr worst images vs run: 6 image(s) worse than allowed</summary>" in md
    for case in TILES:
        assert re.search(rf"^\| {case} \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0 \|$", md, re.M), md
    js = json.loads(outcome_json(outcome))
    check = next(c for c in js["checks"] if c["kind"] == "worst_images")
    assert sorted(im["case"] for im in check["images"]) == TILES


def test_one_sign_convention_worse_by_positive_when_worse(outcome, store) -> None:  # noqa: ANN001, F811
    """blurry is worse on psnr: every output says "worse by" a positive number; the worst-images row carries its
    worst image's values (not n/a) and a positive worse-by, like the mean's row."""
    mean, worst = (next(r for r in outcome.results if r.kind == k) for k in ("baseline", "worst_images"))
    assert mean.worse_by is not None and mean.worse_by > 0.3 and worst.worse_by is not None and worst.worse_by > 0
    assert mean.worse_by_ci is not None and 0 < mean.worse_by_ci[0] <= mean.worse_by <= mean.worse_by_ci[1]
    assert worst.worst_case in TILES and worst.candidate_mean is not None and worst.baseline_mean is not None
    assert worst.worse_by == pytest.approx(worst.baseline_mean - worst.candidate_mean)  # psnr: higher is better
    assert f"worse by {mean.worse_by:.4g} dB" in mean.message and "positive = better" not in mean.message
    md = outcome_markdown(outcome)
    assert "| worse by (+ = worse) [CI] | allowed |" in md and "+ = better" not in md
    row = next(line for line in md.splitlines() if line.startswith("| psnr worst images vs run"))
    assert "| n | unit |" in md and row.endswith("| dB |")  # audit D2: every number with its unit
    assert f"(worst image: {worst.worst_case})" in row and "n/a" not in row and f"| {worst.worse_by:.4g} |" in row
    d = outcome_dict(outcome)
    for c in d["checks"]:  # JSON: every check carries worse_by; the stored gate reads back the same way
        if c["kind"] in ("baseline", "worst_images"):
            assert c["worse_by"] > 0 and worse_by(c)[0] == c["worse_by"]
            assert "diff_mean" not in c and c["unit"] == "dB" and c["better"] == "higher"  # one sign, a unit
    html = checks_table(d["checks"])
    assert "worse by (+ = worse) [CI]" in html and "+ = better" not in html
    assert all(f"<li>{case} " in html for case in TILES)  # the report's "why" lists every image too
    status = json.loads(status_output(store, "blurry-bicubic", "json"))[0]["latest"]
    assert status["changes"][0]["worse_by"] == pytest.approx(mean.worse_by)


def test_stored_gates_of_the_old_convention_read_the_same() -> None:
    """Rows stored before "worse by": a baseline check's diff_mean was goodness, a worst-images check's the loss."""
    assert worse_by({"kind": "baseline", "diff_mean": -0.5, "diff_ci": [-0.7, -0.3]}) == (0.5, (0.3, 0.7))
    assert worse_by({"kind": "worst_images", "diff_mean": 0.02}) == (0.02, None)
    assert worse_by({"kind": "baseline", "diff_mean": None}) == (None, None)


def test_junit_and_pytest_failure_body_name_every_image(world, pytester: pytest.Pytester) -> None:  # noqa: ANN001, F811
    """The shipped upscale suite under the strict policy, candidate blurry against the bicubic run."""
    from tests.gate.helpers import register

    register()
    pytester.makeconftest("from tests.gate.helpers import register\nregister()\n")
    for name in ("test_upscale.py", "policy_upscale.toml"):
        (pytester.path / name).write_text((SUITES / name).read_text())
    lines = ["[policy]", 'track = "upscale"', "n_boot = 500", "[metrics.psnr]", "margin = 0.3", "image_margin = 0.0",
             "image_relative_margin = 0.0"]
    (pytester.path / "strict.toml").write_text("\n".join(lines) + "\n")
    db = Path(str(world["root"])) / "qa.duckdb"
    (pytester.path / "qa.duckdb").write_bytes(db.read_bytes())
    xml = pytester.path / "out.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", *INNER, "--decoder=blurry-bicubic",
                                f"--reference-set={world['refset']}", f"--db={pytester.path / 'qa.duckdb'}",
                                "--policy=strict.toml", f"--baseline={world['runs']['bicubic1']}", f"--junitxml={xml}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    # a progress line per decoder (problem 7): what the session is doing, then the run it used
    assert f"qa: blurry-bicubic: reused run {world['runs']['blurry']} in " in out
    body = out[out.index("test_worst_images_not_worse_than_baseline"):]
    for case in TILES:
        assert re.search(rf"image \d/6: {case} ", body), body
    # problem 4: the failure body speaks the gate's words, not qa's internals (pytest prints each argument)
    assert "Baseline(kind=" not in out and "RunInfo(" not in out and "RunHandle(" not in out
    assert f"qa_baseline = <baseline run (run {world['runs']['bicubic1']})>" in out
    case = next(c for c in ET.parse(xml).getroot().iter("testcase") if c.get("name", "").startswith("test_worst"))
    props = [p.get("value", "") for p in case.iter("property") if p.get("name") == "qa.image"]
    assert sorted(p.split()[0] for p in props) == TILES and all("worse by" in p for p in props)
