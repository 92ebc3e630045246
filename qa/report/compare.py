"""Candidate vs approved, per image: where does the latest run invent more than the approved release?

For each decoder whose latest run is not its approved run, every reference image is ranked by the per-image
invented-detail score that the track's policy gates on its worst images (:func:`ranking_metric`: the first
metric of group ``invented`` with a worst-images rule, read from the policy, never named here), by how much it
is worse than in the approved run, in that metric's own units (absolute, not relative: a tiny value that triples
is not ranked above a large one that grows a lot). The policy's per-image allowance is shown beside it. The top
:data:`TOP_N` images are shown and the rest fold under "show all". Each row shows the reference, both outputs,
both maps and the map of the change (candidate map minus approved map, where it grew), all maps on one colour
scale that the legend names; clicking a row opens both outputs at their stored resolution, side by side, with a
zoom on the region where the change map is largest (a pure-CSS ``:target`` view: no script, no network).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from qa.averaging import mean_of
from qa.gate.data import metric_averaging
from qa.gate.policy import MetricRule, Policy
from qa.report import crops
from qa.report.data import ImageRow, ReportData, RunInfo, target_of
from qa.report.grid import map_kind
from qa.report.safe import esc, fmt
from qa.report.thumbs import IMAGE_BUDGET, ImagePool, _decode, overlay_gain

#: images shown before "show all"
TOP_N = 8
#: the zoom shows a window of this fraction of the image side, magnified to ZOOM_PX
ZOOM_FRACTION = 0.25
ZOOM_PX = 320
#: the outputs in the comparison are magnified by an integer factor to about this size
LIGHTBOX_PX = 360

CSS = """
.cmp-row{display:flex;gap:6px;align-items:flex-start;margin:6px 0;padding:4px;border-top:1px solid #eee}
.cmp-row .stack{width:120px;height:120px}.cmp-row .stack .img{width:120px;height:120px}
.cmp-row .mapbg{background:#111}.cmp-row .cell{width:124px}.cmp-open{flex:0 0 230px}.cmp-info{font-size:12px}
.lightbox{display:none}.lightbox:target{display:block;position:fixed;inset:0;z-index:10;background:#0f1419;
color:#eee;overflow:auto;padding:16px 24px}.lightbox a{color:#9cc3ff}.lb-row{display:flex;gap:18px;flex-wrap:wrap}
.lb-img{position:relative;background-repeat:no-repeat;image-rendering:pixelated}
.lb-box{position:absolute;border:2px solid #ffeb3b;box-sizing:border-box}
.lb-zoom{background-repeat:no-repeat;image-rendering:pixelated;border:2px solid #ffeb3b}
.cmp-legend{display:flex;gap:8px;align-items:center;font-size:12px;margin:4px 0}
.cmp-ramp{display:inline-block;width:160px;height:12px;border:1px solid #999;
background:linear-gradient(to right,rgba(255,40,40,0),rgba(255,40,40,1)),#111}.cmp-over{color:#b00020}
"""


@dataclass
class CaseChange:
    """One image: how much worse its ranking metric is than in the approved run (metric units, + = worse), its
    two values, and the policy's allowance for it (None without a per-image rule)."""

    case_id: str
    worse_by: float
    metric: str
    approved: float
    candidate: float
    allowed: float | None = None

    @property
    def over(self) -> bool:
        """Whether the image is worse than its allowance (the worst-images check fails on it)."""
        return self.allowed is not None and self.worse_by > self.allowed


def _means(rows: list[ImageRow], run_id: str) -> dict[tuple[str, str], float]:
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.run_id == run_id and r.status == "ok" and r.value is not None and math.isfinite(float(r.value)):
            acc.setdefault((r.case_id, r.metric), []).append(float(r.value))
    return {k: mean_of(v, metric_averaging(k[1])) for k, v in acc.items()}


def ranking_metric(policy: Policy | None, available: set[str]) -> tuple[str, MetricRule | None]:
    """The metric the compare view ranks by: the first of ``policy``'s metrics in group ``invented`` whose
    worst-images rule is set (what its gate checks image by image) and that both runs have; else the first such
    metric of any group; else (runs made without that metric) the policy's first invented metric both runs have,
    then its first metric; ('', None) when there is none."""
    rules = [r for r in (policy.metrics.values() if policy is not None else []) if r.metric in available]
    for per_image, group in ((True, "invented"), (True, None), (False, "invented"), (False, None)):
        for rule in rules:  # per-image rules first; without one both runs have, the policy's invented metric
            if (rule.checks_worst_images() or not per_image) and group in (None, rule.group):
                return rule.metric, rule
    return "", None


def rank_cases(data: ReportData, run: RunInfo, approved: RunInfo) -> tuple[list[CaseChange], str]:
    """Every paired image, most worsened first, and the metric it was ranked by ('' when none applies)."""
    cand, base = _means(data.image_rows, run.run_id), _means(data.approved_rows, approved.run_id)
    both = {m for (_, m) in cand} & {m for (_, m) in base}
    metric, rule = ranking_metric(data.policies.get(run.track), both)
    target = target_of(metric) if metric else None
    if target is None or not target.has_direction:
        return [], ""
    out = []
    for case in sorted({c for (c, m) in cand if m == metric}):
        if (case, metric) not in base:
            continue
        b, c = base[(case, metric)], cand[(case, metric)]
        worse = 0.0 if b == c else target.goodness(b) - target.goodness(c)
        allow = None
        if rule is not None and (rule.image_margin is not None or rule.image_relative_margin is not None):
            allow = (rule.image_margin or 0.0) + (rule.image_relative_margin or 0.0) * abs(target.goodness(b))
        out.append(CaseChange(case, worse, metric, b, c, allow))
    out.sort(key=lambda c: (-c.worse_by, c.case_id))
    return out, metric


def rule_of(data: ReportData, run: RunInfo, metric: str) -> bool:
    """Whether the track's policy gates ``metric`` image by image (a worst-images rule)."""
    policy = data.policies.get(run.track)
    rule = policy.metrics.get(metric) if policy is not None else None
    return rule is not None and rule.checks_worst_images()


def legend(metric: str, kind: str, gain: float) -> str:
    """The colour scale of every map in one decoder's view: transparent (0) to full red (1/gain and above), in
    the map's stored units (a map PNG stores value v as brightness v, clipped to [0, 1])."""
    full = 1.0 / gain if gain > 0 else 1.0
    name = kind[4:] if kind.startswith("map:") else kind
    return (f'<div class="cmp-legend" role="img" aria-label="map colour scale"><span>map of {esc(name)}: 0</span>'
            f'<span class="cmp-ramp"></span><span>{esc(f"{full:.3g}")} and above (per-pixel value of the '
            f"{esc(name)} map; one scale for every map and change map of this decoder)</span></div>")


def change_map(cand_png: bytes | None, base_png: bytes | None) -> tuple[bytes | None, tuple[int, int, int, int]]:
    """(PNG of max(candidate map - approved map, 0), zoom box (x, y, w, h) in map pixels around its largest
    window); the box is the candidate map's largest window when there is no approved map."""
    cand = _decode(cand_png) if cand_png else None
    if cand is None:
        return None, (0, 0, 0, 0)
    c = np.asarray(cand.convert("L"), dtype=np.float32)
    base = _decode(base_png) if base_png else None
    b = np.asarray(base.convert("L"), dtype=np.float32) if base is not None else None
    diff = np.clip(c - b, 0, 255) if b is not None and b.shape == c.shape else c
    h, w = diff.shape
    side = max(4, int(round(min(h, w) * ZOOM_FRACTION)))
    integral = np.pad(diff, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    buf = io.BytesIO()
    Image.fromarray(diff.astype(np.uint8), "L").save(buf, format="PNG")
    return (buf.getvalue() if b is not None else None), (int(x), int(y), side, side)


def _thumb(pool: ImagePool, png: bytes | None, label: str, overlay: bool = False, gain: float = 1.0) -> str:
    cls = pool.add(png, overlay=overlay, gain=gain if overlay else 1.0)
    bg = " mapbg" if overlay else ""
    inner = (f'<div class="img {cls}" role="img" aria-label="{esc(label)}"></div>' if cls
             else f'<div class="noimg">{esc(label)}: none stored</div>')
    return f'<figure class="cell"><div class="stack{bg}">{inner}</div><figcaption>{esc(label)}</figcaption></figure>'


def _lightbox(pool: ImagePool, anchor: str, case: CaseChange, pngs: dict[str, bytes | None],
              box: tuple[int, int, int, int], map_size: tuple[int, int], crops_html: str = "") -> str:
    parts = []
    for role in ("approved", "candidate"):
        png = pngs.get(role)
        img = _decode(png) if png else None
        cls = pool.add(png)
        if img is None or cls is None:
            parts.append(f"<div>{esc(role)}: no image stored</div>")
            continue
        w, h = img.size
        k = max(2, LIGHTBOX_PX // max(w, h))  # stored thumbnails are small: magnified, pixelated
        sx, sy = w / max(map_size[0], 1), h / max(map_size[1], 1)
        x, y, bw, bh = (round(v) for v in (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
        z = ZOOM_PX / max(bw, 1)
        parts.append(
            f'<figure><figcaption>{esc(role)} ({w}x{h} stored)</figcaption>'
            f'<div class="lb-img {cls}" style="width:{w * k}px;height:{h * k}px;background-size:{w * k}px {h * k}px">'
            f'<div class="lb-box" style="left:{x * k}px;top:{y * k}px;width:{bw * k}px;height:{bh * k}px"></div></div>'
            f'<figcaption>zoom on the marked region</figcaption><div class="lb-zoom {cls}" style="width:{ZOOM_PX}px;'
            f'height:{round(bh * z)}px;background-size:{w * z:.0f}px {h * z:.0f}px;'
            f'background-position:-{x * z:.0f}px -{y * z:.0f}px"></div></figure>')
    return (f'<div class="lightbox" id="{anchor}"><p><a href="#compare">close</a> &middot; <b>{esc(case.case_id)}</b>: '
            f"{esc(case.metric)} {esc(fmt(case.approved))} (approved) &rarr; {esc(fmt(case.candidate))} (candidate)"
            f'</p>{crops_html}<p>the stored thumbnails, whole:</p><div class="lb-row">{"".join(parts)}</div></div>')


def _row_info(i: int, case: CaseChange, anchor: str, unit: str) -> str:
    allowed = (f"<br>allowed {esc(fmt(case.allowed))}" + (' <b class="cmp-over">over</b>' if case.over else "")
               if case.allowed is not None else "")
    return (f'<a href="#{anchor}" class="cmp-open"><div class="cmp-info"><b>#{i + 1} {esc(case.case_id)}</b><br>'
            f"{esc(case.metric)} {esc(fmt(case.approved))} &rarr; {esc(fmt(case.candidate))}<br>worse by "
            f"{esc(fmt(case.worse_by))}{esc(f' {unit}' if unit else '')}{allowed}</div></a>")


def compare_section(data: ReportData) -> str:
    """The view for every decoder whose latest run has an approved run to compare with."""
    pairs = [(data.latest[d], data.approved[d]) for d in data.decoders
             if d in data.approved and data.approved[d].run_id != data.latest[d].run_id]
    if not pairs:
        return ("<p class='muted'>no decoder has an approved run other than its latest run: approve a release "
                "with <code>qa signoff --decision approve</code>, then this compares each candidate with it</p>")
    from qa.metrics.declarations import declaration

    pool = ImagePool(budget=IMAGE_BUDGET // 2, prefix="c")  # the grid's pool uses "t"
    crop_pool = data.crops.pool  # its CSS is written last, by build.render, within what is left of the page budget
    parts = []
    for k, (run, approved) in enumerate(pairs):
        ranked, metric = rank_cases(data, run, approved)
        head = (f"<h3>{esc(run.decoder)}: candidate <code>{esc(run.run_id)}</code> vs approved "
                f"<code>{esc(approved.run_id)}</code></h3>")
        if not metric:
            parts.append(head + "<p class='muted'>the track's policy gates no per-image metric that both runs have: "
                         "nothing to rank by</p>")
            continue
        unit = declaration(metric).unit
        kind = f"map:{metric}" if any(kk == f"map:{metric}" for (_, _, kk) in data.images) else (
            map_kind(data, run.run_id) or map_kind(data, approved.run_id))
        maps = [png for (r, _, kk), png in data.images.items() if kk == kind and r in (run.run_id, approved.run_id)]
        gain = overlay_gain(maps)  # one scale for both runs' maps and the change, named by the legend
        parts.append(head + f"<p class='muted'>ranked by how much worse <b>{esc(metric)}</b> is than in the approved "
                     f"run ({esc(unit or 'metric units')}, + = more; "
                     + (f"the per-image score the {esc(run.track)} policy gates on its worst images" if rule_of(data, run,
                        metric) else f"the runs lack the metric the {esc(run.track)} policy gates per image")
                     + "); click a row to compare</p>"
                     + (legend(metric, kind, gain) if kind else "<p class='muted'>no maps stored</p>"))
        rows = []
        for i, case in enumerate(ranked):
            get = data.images.get
            pngs = {"approved": get((approved.run_id, case.case_id, "output")),
                    "candidate": get((run.run_id, case.case_id, "output"))}
            ref = get((run.run_id, case.case_id, "reference")) or get((approved.run_id, case.case_id, "reference"))
            cmap = get((run.run_id, case.case_id, kind)) if kind else None
            amap = get((approved.run_id, case.case_id, kind)) if kind else None
            delta_png, box = change_map(cmap, amap)
            size = _decode(cmap).size if cmap and _decode(cmap) is not None else (1, 1)  # type: ignore[union-attr]
            anchor = f"cmp-{k}-{i}"
            rows.append(
                f'<div class="cmp-row" data-case="{esc(case.case_id)}" data-rank="{i + 1}">'
                + _row_info(i, case, anchor, unit) + _thumb(pool, ref, "reference")
                + _thumb(pool, pngs["approved"], "approved output") + _thumb(pool, pngs["candidate"], "candidate output")
                + _thumb(pool, amap, "approved map", True, gain) + _thumb(pool, cmap, "candidate map", True, gain)
                + _thumb(pool, delta_png, "change (more in candidate)", True, gain) + "</div>"
                + _lightbox(pool, anchor, case, pngs, box, size,
                            crops.crop_view(data.crops, crop_pool, run, approved, case.case_id, anchor, i)))
        shown, rest = rows[:TOP_N], rows[TOP_N:]
        parts.append("".join(shown))
        if rest:
            parts.append(f"<details><summary>show all {len(rows)} images</summary>{''.join(rest)}</details>")
    return f"<style>{CSS}{pool.css()}{crops.CSS}</style>" + "".join(parts)
