"""Candidate vs approved, per image: where does the latest run invent (or lose) more than the approved release?

For each decoder whose latest run is not its approved run, every reference image gets a score: the worst change
of the gated metrics (those its gate judged per image against the approved run, its worst-images rules; else
those it compared at all; else every per-image metric with a direction), each as goodness (higher = better, see :class:`qa.metrics.base.Target`) relative to the approved
run's set mean. Images are sorted worst first; the top :data:`TOP_N` are shown and the rest fold under "show
all". Each row shows both outputs, both maps and the map of the change (candidate map minus approved map, where
it grew); clicking a row opens both outputs at their stored resolution, side by side, with a zoom on the region
where the change map is largest (a pure-CSS ``:target`` view: no script, no network).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from qa.report import crops
from qa.report.data import ImageRow, ReportData, RunInfo, target_of
from qa.report.gates import gate_of_run
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
.cmp-row .mapbg{background:#111}.cmp-row .cell{width:124px}.cmp-info{min-width:220px;font-size:12px}
.lightbox{display:none}.lightbox:target{display:block;position:fixed;inset:0;z-index:10;background:#0f1419;
color:#eee;overflow:auto;padding:16px 24px}.lightbox a{color:#9cc3ff}.lb-row{display:flex;gap:18px;flex-wrap:wrap}
.lb-img{position:relative;background-repeat:no-repeat;image-rendering:pixelated}
.lb-box{position:absolute;border:2px solid #ffeb3b;box-sizing:border-box}
.lb-zoom{background-repeat:no-repeat;image-rendering:pixelated;border:2px solid #ffeb3b}
"""


@dataclass
class CaseChange:
    """One image: its score (worst relative change of goodness; negative = worse) and the metric behind it."""

    case_id: str
    score: float
    metric: str
    approved: float
    candidate: float


def _means(rows: list[ImageRow], run_id: str) -> dict[tuple[str, str], float]:
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.run_id == run_id and r.status == "ok" and r.value is not None and math.isfinite(float(r.value)):
            acc.setdefault((r.case_id, r.metric), []).append(float(r.value))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def gated_metrics(data: ReportData, run: RunInfo) -> tuple[list[str], list[str]]:
    """The metrics the run's gate judged per image against the approved run (its worst-images rules: for
    invented detail the region score ``invented_peak``, whose size does not shrink with the invented area, not
    the share its mean rule reads), and those it compared with the approved run at all; ([], []) without a
    gate."""
    gate = gate_of_run(data, run.run_id, run.track)
    checks = gate.details.get("checks") if gate is not None and isinstance(gate.details, dict) else None
    if not isinstance(checks, list):
        return [], []
    approved = [c for c in checks if isinstance(c, dict) and c.get("baseline_kind") == "approved"]
    per_image = sorted({str(c.get("metric")) for c in approved if c.get("kind") == "worst_images"})
    compared = sorted({str(c.get("metric")) for c in approved if c.get("kind") in ("baseline", "worst_images")})
    return per_image, compared


def rank_cases(data: ReportData, run: RunInfo, approved: RunInfo) -> tuple[list[CaseChange], list[str]]:
    """Every paired image, worst first, and the metrics it was ranked by."""
    cand, base = _means(data.image_rows, run.run_id), _means(data.approved_rows, approved.run_id)
    both = {m for (_, m) in cand} & {m for (_, m) in base} - {"case"}
    per_image, compared = gated_metrics(data, run)
    metrics = [m for m in per_image if m in both] or [m for m in compared if m in both] or sorted(both)
    targets = {m: t for m in metrics if (t := target_of(m)) is not None and t.has_direction}
    scale = {}
    for m, t in targets.items():
        vals = [t.goodness(v) for (c, mm), v in base.items() if mm == m]
        scale[m] = max(abs(float(np.mean(vals))), 1e-12) if vals else 1.0
    out = []
    for case in sorted({c for (c, m) in cand if m in targets}):
        worst: CaseChange | None = None
        for m, t in targets.items():
            if (case, m) in cand and (case, m) in base:
                rel = (t.goodness(cand[(case, m)]) - t.goodness(base[(case, m)])) / scale[m]
                if worst is None or rel < worst.score:
                    worst = CaseChange(case, rel, m, base[(case, m)], cand[(case, m)])
        if worst is not None:
            out.append(worst)
    out.sort(key=lambda c: (c.score, c.case_id))
    return out, sorted(targets)


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


def compare_section(data: ReportData) -> str:
    """The view for every decoder whose latest run has an approved run to compare with."""
    pairs = [(data.latest[d], data.approved[d]) for d in data.decoders
             if d in data.approved and data.approved[d].run_id != data.latest[d].run_id]
    if not pairs:
        return ("<p class='muted'>no decoder has an approved run other than its latest run: approve a release "
                "with <code>qa signoff --decision approve</code>, then this compares each candidate with it</p>")
    pool = ImagePool(budget=IMAGE_BUDGET // 2, prefix="c")  # the grid's pool uses "t"
    crop_pool = data.crops.pool  # its CSS is written last, by build.render, within what is left of the page budget
    parts = []
    for k, (run, approved) in enumerate(pairs):
        ranked, metrics = rank_cases(data, run, approved)
        kind = map_kind(data, run.run_id) or map_kind(data, approved.run_id)
        parts.append(f"<h3>{esc(run.decoder)}: candidate <code>{esc(run.run_id)}</code> vs approved "
                     f"<code>{esc(approved.run_id)}</code></h3><p class='muted'>sorted worst first by the largest "
                     f"relative change of {esc(', '.join(metrics) or 'no metric')} (change of goodness / the approved "
                     f"set mean); maps: {esc(kind[4:] if kind else 'none stored')}; click a row to compare</p>")
        maps = [png for (r, _, kk), png in data.images.items() if kk == kind and r in (run.run_id, approved.run_id)]
        gain = overlay_gain(maps)  # one scale for both runs' maps and the change, as in the image grid
        rows = []
        for i, case in enumerate(ranked):
            get = data.images.get
            pngs = {"approved": get((approved.run_id, case.case_id, "output")),
                    "candidate": get((run.run_id, case.case_id, "output"))}
            cmap = get((run.run_id, case.case_id, kind)) if kind else None
            amap = get((approved.run_id, case.case_id, kind)) if kind else None
            delta_png, box = change_map(cmap, amap)
            size = _decode(cmap).size if cmap and _decode(cmap) is not None else (1, 1)  # type: ignore[union-attr]
            anchor = f"cmp-{k}-{i}"
            rows.append(
                f'<div class="cmp-row" data-case="{esc(case.case_id)}"><a href="#{anchor}" class="cmp-open">'
                f'<div class="cmp-info"><b>#{i + 1} {esc(case.case_id)}</b><br>{esc(case.metric)} '
                f"{esc(fmt(case.approved))} &rarr; {esc(fmt(case.candidate))}<br>relative change "
                f"{esc(f'{case.score:+.1%}')} (negative = worse)</div></a>"
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
