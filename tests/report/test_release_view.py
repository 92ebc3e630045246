"""The report as a release reviewer reads it, with two runs of one decoder: an approved run and a candidate that
adds a seeded grain (invented detail) to a few images. The summary names the failed check, the candidate-vs-
approved view lists the grainy images first, the settings diff is shown, and headless Chromium draws the page and
the full-resolution comparison (screenshots)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from qa.decoders.base import DecodeBatch
from qa.decoders.catalog import DECODERS
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from qa.report.browser import render, screenshot
from qa.report.build import write_report
from qa.report.export import find_browser
from qa.store import Store
from tests.gate.signing_helpers import export_reviewer, make_reviewer
from tests.helpers import make_refset

#: images the candidate adds grain to (the others are decoded exactly as by the approved run)
GRAINY = ("tile01", "tile04")


class GrainyBicubic(BicubicDecoder):
    """Bicubic x4 plus seeded Gaussian grain of std ``grain`` in the central half of the cases in ``GRAINY`` (a
    planted invention: the same grain over the whole image is noise the invented-detail method excuses)."""

    family = "grainy"

    def __init__(self, name: str | None = None, device: str = "cpu", grain: float = 0.0) -> None:
        super().__init__(name, device)
        self.settings["grain"] = float(grain)
        self.grain = float(grain)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        g = torch.Generator().manual_seed(seed)
        h, w = out.shape[-2:]
        box = (slice(None), slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
        for i, case in enumerate(batch.case_ids):
            if case in GRAINY and self.grain > 0:  # grain in the central box: grain over the whole image is
                out[i][box] = out[i][box] + self.grain * torch.randn(out[i][box].shape, generator=g)  # benign
        return out.clamp(0, 1)


POLICY_TOML = """[policy]
track = "upscale"
n_boot = 500

[metrics.invented_detail]
group = "invented"
relative_margin = 0.05

[metrics.invented_peak]
group = "invented"
image_relative_margin = 0.5

[metrics.psnr]
min = 10.0
margin = 0.5
"""


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("review")
    refset = make_refset(root / "set", n=6)
    with pytest.MonkeyPatch.context() as mp:
        DECODERS.names()
        mp.setitem(DECODERS._targets, "grainy", GrainyBicubic)  # noqa: SLF001 - test-only registration
        mp.chdir(root)
        store = Store(root / "qa.duckdb")
        cfg = RunConfig(decoder="grainy", reference_set=str(refset), metrics=["psnr", "invented_detail", "invented_peak"],
                        progress=False)
        policy_file = root / "review-policy.toml"
        policy_file.write_text(POLICY_TOML)
        policy = load_policy(policy_file)
        export_reviewer(mp, *make_reviewer(root, "ana"))
        approved = RunEngine(store).start(cfg)
        gate_run(store, approved, policy, "none")
        record_signoff(store, approved, "ana", "approve", "release 1", policy=policy_file)
        (root / "qa.toml").write_text("[decoders.grainy]\ngrain = 0.08\n")
        candidate = RunEngine(store).start(cfg)
        outcome = gate_run(store, candidate, policy, "approved")
        report = write_report(store, out=root / "review.html")
        yield {"root": root, "report": report, "approved": approved, "candidate": candidate, "outcome": outcome}


def _section(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start: text.index("</section>", start)]


def test_summary_names_the_failed_check_and_settings(review: dict[str, object]) -> None:
    outcome = review["outcome"]
    assert outcome.verdict == "fail"  # type: ignore[attr-defined]
    text = Path(str(review["report"])).read_text(encoding="utf-8")
    assert text.index('<section id="summary">') < text.index('<section id="compare">') < text.index(
        '<section id="trends">')  # the report opens on the summary, then the comparison
    summary = _section(text, "summary")
    assert '<span class="failed-check">invented_detail vs approved</span>' in summary
    assert html.escape("grain 0.0 -> 0.08") in summary  # settings of the candidate against the approved run
    gates = _section(text, "gates")
    assert gates.count('<div class="gate">') == 2  # one gate per run


def test_compare_view_lists_the_grainy_images_first(review: dict[str, object]) -> None:
    text = Path(str(review["report"])).read_text(encoding="utf-8")
    compare = _section(text, "compare")
    order = re.findall(r'<div class="cmp-row" data-case="([^"]+)">', compare)
    assert sorted(order) == [f"tile{i:02d}" for i in range(6)]
    assert set(order[:2]) == set(GRAINY), order  # worst first: the two images the candidate added grain to
    # ranked by the metric the gate judged per image (the worst-images rule: the region score), not by the share
    # its mean rule reads or by psnr
    assert "sorted worst first by the largest relative change of invented_peak (" in compare
    assert compare.count('class="lightbox"') == 6 and "change (more in candidate)" in compare


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed (CI installs it)")
def test_release_view_in_headless_chromium(review: dict[str, object]) -> None:
    report = Path(str(review["report"]))
    run = render(report)
    assert run.console == [], run.console
    assert run.attr("js-errors") == 0 and run.attr("thumbs-with-image") == run.attr("thumbs")
    assert "invented_detail vs approved" in run.dom
    page = screenshot(report, report.with_suffix(".png"), size=(1400, 1600))
    with Image.open(page) as img:
        rgb = img.convert("RGB")
        assert len(rgb.getcolors(1 << 22) or []) > 500
        # the failed-checks headline (light red box) is painted near the top of the page
        top = rgb.crop((0, 0, 1400, 500))
        assert any(c[1] == (255, 244, 244) for c in top.getcolors(1 << 22) or [])
    # the comparison of the worst image opens on its anchor: both outputs with the yellow zoom frames
    shot = screenshot(report, report.with_name("cmp.png"), size=(1400, 1000), fragment="cmp-0-0")
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        yellow = sum(n for n, c in rgb.getcolors(1 << 22) or [] if c == (255, 235, 59))
        dark = rgb.crop((0, 0, 1400, 60)).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        assert yellow > 1000, yellow  # two region frames and two zoom frames
        assert sum(dark) < 150  # the dark overlay covers the page
