"""The colour rule of the release gate (gate audit s42, F1/F2/F5): ``chroma_peak``'s worst-images rule, as the
shipped policies state it, blocks a colour-only error on one image that every luma metric misses (an isoluminant
word; an object turned 30 degrees in hue), names the image, and passes a fault-free candidate; the decode policy
has the upscale policy's lost-detail rule.

The world: a 6-tile 64 px set; ``recolour`` is bicubic x4 whose output on tile01 (coffee) gets one planted colour
fault chosen by its settings."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.gate.evaluate import gate_run
from qa.gate.policy import parse_policy
from qa.store import Store
from tests.helpers import make_refset

SUITES = Path(__file__).resolve().parents[2] / "suites"
TRACKS = ("upscale", "decode", "generate")
#: BT.601 luma weights: the planted faults keep this luma (up to clipping), as the audit's did
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
FAULTED = "tile01"


def _policy(track: str) -> dict[str, object]:
    return tomllib.loads((SUITES / f"policy_{track}.toml").read_text(encoding="utf-8"))


def _text_mask(h: int, w: int) -> torch.Tensor:
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((2, h // 2 - 6), "SALE 5", font=ImageFont.load_default(size=11), fill=255)
    return torch.from_numpy(np.asarray(img, np.float32) / 255.0)


class Recolour(BicubicDecoder):
    """Bicubic x4; on tile01 either the chroma of a soft 24 px disc rotated by ``hue`` degrees about the luma axis
    (a wrongly coloured object) or, with ``text``, an isoluminant pink word (colour-only inserted text)."""

    family = "recolour-bicubic"

    def __init__(self, name: str | None = None, device: str = "cpu", factor: int = 4, hue: float = 0.0,
                 text: bool = False, **settings: object) -> None:
        super().__init__(name, device, factor=factor, hue=float(hue), text=bool(text), **settings)
        self.hue, self.text = float(hue), bool(text)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed).clone()
        for i, case in enumerate(batch.case_ids):
            if case != FAULTED:
                continue
            x = out[i]
            h, w = x.shape[-2:]
            if self.text:
                x = x + 0.25 * _text_mask(h, w) * torch.tensor([1.0, -0.299 / 0.587, 0.0]).view(3, 1, 1)
            if self.hue:
                yy, xx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
                disc = torch.clamp(12.5 - torch.hypot(yy - h / 2, xx - w / 2), 0, 1)
                y = (x * LUMA).sum(0, keepdim=True)
                cb, cr = (x[2] - y[0]) / 1.772, (x[0] - y[0]) / 1.402
                t = math.radians(self.hue)
                cb2, cr2 = cb * math.cos(t) - cr * math.sin(t), cb * math.sin(t) + cr * math.cos(t)
                cb, cr = cb + disc * (cb2 - cb), cr + disc * (cr2 - cr)
                r, b = y[0] + 1.402 * cr, y[0] + 1.772 * cb
                g = (y[0] - 0.299 * r - 0.114 * b) / 0.587
                x = torch.stack([r, g, b])
            out[i] = x.clamp(0, 1)
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, str]]:
    root = tmp_path_factory.mktemp("chroma_gate")
    refset = make_refset(root / "set")
    store = Store(root / "qa.duckdb")
    engine = RunEngine(store)
    made = {}
    for key, settings in (("approved", {}), ("same", {}), ("hue30", {"hue": 30.0}), ("text", {"text": True})):
        cfg = RunConfig(decoder="recolour", reference_set=str(refset), metrics=["psnr", "chroma_peak"],
                        progress=False)
        made[key] = engine.start(cfg, Recolour(name="recolour", **settings))
    return store, made


def _colour_gate(store: Store, run: str, baseline: str, track: str) -> object:
    """The gate of ``run`` under the shipped policy's chroma_peak rule alone (the rule as the file states it)."""
    rule = _policy(track)["metrics"]["chroma_peak"]  # type: ignore[index]
    doc = {"policy": {"track": "upscale", "n_boot": 200}, "metrics": {"chroma_peak": rule}}
    return gate_run(store, run, parse_policy(doc, f"policy_{track}.toml [chroma_peak]"), baseline=baseline)


@pytest.mark.parametrize("track", ["upscale", "decode"])
def test_colour_faults_on_one_image_fail_and_name_it(runs, track: str) -> None:  # noqa: ANN001
    store, made = runs
    for fault in ("hue30", "text"):
        outcome = _colour_gate(store, made[fault], made["approved"], track)
        worst = next(r for r in outcome.results if r.metric == "chroma_peak" and r.kind == "worst_images")
        assert outcome.verdict == "fail" and worst.verdict == "fail", (fault, worst.message)
        assert [im["case"] for im in worst.images] == [FAULTED], worst.message


@pytest.mark.parametrize("track", ["upscale", "decode"])
def test_a_fault_free_candidate_passes_the_colour_rule(runs, track: str) -> None:  # noqa: ANN001
    store, made = runs
    assert _colour_gate(store, made["same"], made["approved"], track).verdict == "pass"


@pytest.mark.parametrize("track", TRACKS)
def test_every_shipped_policy_has_the_colour_worst_images_rule(track: str) -> None:
    rule = _policy(track)["metrics"]["chroma_peak"]  # type: ignore[index]
    assert rule["required"] is True and rule["group"] == "fidelity"
    assert rule["image_margin"] > 0 and rule["image_relative_margin"] > 0
    assert rule == _policy("upscale")["metrics"]["chroma_peak"] or track == "generate"  # type: ignore[index]


def test_the_generate_policy_skips_the_rule_where_no_pixel_aligned_reference_exists() -> None:
    assert _policy("generate")["metrics"]["chroma_peak"]["not_applicable"] == "skip"  # type: ignore[index]


def test_the_decode_policy_has_the_upscale_lost_detail_rule() -> None:
    """Audit F5: without it a sigma 0.7 blur of the VAE's output passed the decode track."""
    decode = _policy("decode")["metrics"]["lost_detail"]  # type: ignore[index]
    upscale = _policy("upscale")["metrics"]["lost_detail"]  # type: ignore[index]
    assert decode["required"] is True
    assert decode["relative_margin"] == upscale["relative_margin"]
    assert decode["image_relative_margin"] == upscale["image_relative_margin"]
