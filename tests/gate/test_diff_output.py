"""``qa diff``'s text table: a long reason (a missing-weights fix with its URL) is said once under the table and
referred to by number; a reason both runs share is not repeated; units are listed once, not in every cell."""

from __future__ import annotations

from qa.gate.data import RunInfo
from qa.gate.diff import MAX_NOTE, MetricDiff, diff_output


def _run(run_id: str, decoder: str) -> RunInfo:
    return RunInfo(run_id=run_id, decoder=decoder, status="finished", seeds=(0,), track="upscale")


def test_long_reasons_are_said_once_and_units_listed_once() -> None:
    fix = "weights 'inception-fid' absent; fix: `qa weights fetch inception-fid` (downloads https://example.org/x.pth)"
    assert len(fix) > MAX_NOTE
    diffs = [MetricDiff("fid", "", "lower", note=fix), MetricDiff("kid", "", "lower", note=fix),
             MetricDiff("psnr", "dB", "higher", a_mean=30.0, b_mean=29.0, worse_by=1.0, worse_by_ci=(0.5, 1.5), n=4,
                        n_worse=3, worst_case="tile-3", worst_by=2.0),
             MetricDiff("lpips_alex", "", "lower", note="no paired values")]
    out = diff_output(_run("a-1", "bicubic"), _run("b-1", "esrgan"), diffs)
    assert out.count("https://example.org/x.pth") == 1  # the long reason once, under the table
    fid_row = next(line for line in out.splitlines() if line.startswith("fid "))
    kid_row = next(line for line in out.splitlines() if line.startswith("kid "))
    assert fid_row.rstrip().endswith("[1]") and kid_row.rstrip().endswith("[1]")
    assert "  [1] " + fix in out.splitlines()
    psnr_row = next(line for line in out.splitlines() if line.startswith("psnr "))
    assert "dB" not in psnr_row and "  psnr: dB" in out.splitlines()  # the unit once, not in the cells
    assert "1 [0.5, 1.5]" in psnr_row and "3/4" in psnr_row and "tile-3 (+2)" in psnr_row
    assert next(line for line in out.splitlines() if line.startswith("lpips_alex")).endswith("no paired values")


def test_markdown_keeps_units_and_reasons_in_the_cells() -> None:
    diffs = [MetricDiff("psnr", "dB", "higher", a_mean=30.0, b_mean=29.0, worse_by=1.0, n=4, n_worse=3)]
    out = diff_output(_run("a-1", "bicubic"), _run("b-1", "esrgan"), diffs, fmt="markdown")
    assert "| psnr | higher | 30 dB | 29 dB | 1 | 3/4 | - |  |" in out
