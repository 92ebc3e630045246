"""Relative margins, the worst-images rule, metric targets and aliases (pure functions, checked by hand), and
the gate's outputs on a small store: JSON/Markdown, a run gated against itself, `qa status` for a sign-off."""

from __future__ import annotations

import json
import math

import pytest

from qa.cli.main import main
from qa.gate.cli import run_gate_command
from qa.gate.policy import MetricRule, parse_policy
from qa.gate.signoff import record_signoff
from qa.gate.status import status_output
from qa.gate.worst import judge_worst_images
from qa.metrics.base import Target, metric_target
from qa.metrics.catalog import METRICS
from tests.gate.test_gate_logic import (  # noqa: F401  (fixtures: a 6-tile store, a trusted reviewer key)
    policy_path,
    reviewer_keys,
    store,
    world,
)


def test_allowed_loss_is_the_larger_of_absolute_and_relative() -> None:
    rule = MetricRule("m", margin=0.001, relative_margin=0.05)
    assert rule.allowed_loss(0.017, decoder=False) == pytest.approx(0.00085 if 0.00085 > 0.001 else 0.001)
    assert rule.allowed_loss(-0.1, decoder=False) == pytest.approx(0.005)  # |baseline| (goodness may be < 0)
    assert MetricRule("m", relative_margin=0.05).allowed_loss(0.017, False) == pytest.approx(0.00085)
    assert MetricRule("m").allowed_loss(1.0, False) is None and not MetricRule("m").compares(False)
    assert MetricRule("m", decoder_relative_margin=0.1).allowed_loss(2.0, True) == pytest.approx(0.2)


def test_policy_parses_the_new_keys_and_rejects_bad_ones() -> None:
    p = parse_policy({"policy": {"track": "upscale"}, "metrics": {"invented_detail": {
        "relative_margin": 0.05, "image_relative_margin": 0.35, "image_margin": 0.002, "tail_quantile": 0.9}}})
    r = p.rule("invented_detail")
    assert (r.relative_margin, r.image_relative_margin, r.image_margin, r.tail_quantile) == (0.05, 0.35, 0.002, 0.9)
    assert r.compares(False) and r.checks_worst_images() and not r.compares(True)
    with pytest.raises(Exception, match="tail_quantile: must be in"):
        parse_policy({"policy": {"track": "upscale"}, "metrics": {"x": {"tail_quantile": 1.0}}})
    with pytest.raises(Exception, match="relative_margin: must be >= 0.0"):
        parse_policy({"policy": {"track": "upscale"}, "metrics": {"x": {"relative_margin": -0.1}}})


def test_worst_images_names_the_image_over_its_allowance() -> None:
    lower = Target("lower")
    base = {"a": 0.0149, "b": 0.02, "c": 0.01}
    cand = {"a": 0.0318, "b": 0.021, "c": 0.0105}
    rule = MetricRule("invented_detail", image_margin=0.002, image_relative_margin=0.35)
    got = judge_worst_images({k: lower.goodness(v) for k, v in cand.items()},
                             {k: lower.goodness(v) for k, v in base.items()}, rule, lower)
    # a: +0.0169 > 0.002 + 0.35 * 0.0149 = 0.007215; b: +0.001 < 0.009; c: +0.0005 < 0.0055
    assert got.verdict == "fail" and [o[0] for o in got.offenders] == ["a"]
    assert got.offenders[0][4] == pytest.approx(0.007215) and got.offenders[0][3] == pytest.approx(0.0169)
    assert "a 0.0149 -> 0.0318" in got.text()
    same = judge_worst_images({k: -v for k, v in base.items()}, {k: -v for k, v in base.items()}, rule, lower)
    assert same.verdict == "pass" and same.worst_loss == 0.0


def test_tail_quantile_rule() -> None:
    lower = Target("lower")
    base = {f"i{k}": 0.01 * (k + 1) for k in range(20)}  # 0.01 .. 0.20
    cand = dict(base, i19=0.30)  # only the worst image gets worse
    rule = MetricRule("m", relative_margin=0.05, tail_quantile=0.95)
    got = judge_worst_images({k: -v for k, v in cand.items()}, {k: -v for k, v in base.items()}, rule, lower)
    # the 95% quantile (inverted CDF, 20 values) of the worse side is the 19th value: 0.19 in both runs
    assert got.tail is not None and -got.tail[1] == pytest.approx(0.19) and got.verdict == "pass"
    cand = dict(base, i18=0.40, i19=0.50)
    got = judge_worst_images({k: -v for k, v in cand.items()}, {k: -v for k, v in base.items()}, rule, lower)
    assert got.verdict == "fail" and -got.tail[2] == pytest.approx(0.40)  # type: ignore[index]


def test_the_tail_quantile_is_the_documented_order_statistic_of_the_worse_side() -> None:
    """The q quantile of the per-image badness, inverted CDF: its ceil(q n)-th smallest. Read on the goodness side
    as its (1 - q) quantile it depended on binary rounding: (1 - 0.9) x 100 = 9.999999999999998 took the 91st of
    100 (report audit L3's rule, here in the worst-images tail)."""
    lower = Target("lower")
    for n, q, k in ((100, 0.9, 90), (20, 0.95, 19), (10, 0.7, 7), (1000, 0.99, 990)):
        base = {f"i{j}": float(j) for j in range(1, n + 1)}  # badness j: the k-th smallest is k
        got = judge_worst_images({i: -v for i, v in base.items()}, {i: -v for i, v in base.items()},
                                 MetricRule("m", relative_margin=0.05, tail_quantile=q), lower)
        assert got.tail is not None and -got.tail[1] == float(k), (n, q, got.tail)


def test_targets_and_aliases() -> None:
    hf = metric_target(METRICS.factory("hf_energy_ratio"))
    assert hf == Target("value", 1.0) and hf.label() == "closer to 1"
    assert hf.goodness(1.1) > hf.goodness(0.05)  # bicubic's 0.05 is not the best any more
    assert metric_target(METRICS.factory("seed_variance")).kind == "none"
    assert math.isnan(Target("none").goodness(0.3))
    assert metric_target(METRICS.factory("psnr")).kind == "higher"
    assert METRICS.factory("lpips") is METRICS.factory("lpips_alex") and "lpips" in METRICS
    assert "lpips" not in METRICS.names()


def test_gate_formats_self_gate_warning_and_status(world, store, policy_path, capsys) -> None:  # noqa: ANN001, F811
    runs = world["runs"]
    # the first approval rests on a passing gate against no baseline (chosen explicitly) under the named policy
    assert run_gate_command(store, run=runs["bicubic2"], baseline="none", policy=policy_path) == 0
    capsys.readouterr()
    record_signoff(store, runs["bicubic2"], "ana", "approve", "", policy=policy_path)
    # the approved run gated against itself: passes, but warns that the comparison cannot fail
    assert run_gate_command(store, run=runs["bicubic2"], baseline="approved", policy=policy_path, fmt="json") == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["verdict"] == "pass" and any("candidate run" in n and "itself" in n for n in out["notes"])
    assert "warning: the approved baseline is the candidate run" in captured.err
    assert run_gate_command(store, run=runs["blurry"], baseline="none", policy=policy_path,
                            fmt="markdown") == 1
    md = capsys.readouterr().out
    assert md.startswith("### qa gate: FAIL") and "**Failed checks:** psnr vs decoder:bicubic" in md
    assert "| psnr vs decoder:bicubic | fail |" in md and "chosen with --baseline none" in md
    text = status_output(store, "bicubic", "markdown")
    assert "### qa status: bicubic" in text and "approved run: `" + runs["bicubic2"] in text
    js = json.loads(status_output(store, "blurry-bicubic", "json"))
    assert js[0]["latest"]["failed"][0]["check"] == "psnr vs decoder:bicubic"
    assert js[0]["runs"][0]["gate"].startswith("gate fail (under a policy that is not the shipped one) vs no baseline (--baseline none")  # not "vs approved"
    assert "no report yet" in js[0]["latest"]["report"] and "--db " in js[0]["latest"]["report"]  # audit D16


def test_gate_help_lists_exit_codes(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        main(["gate", "--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text and "  1  the release is blocked" in text and "--decoder NAME" in text
