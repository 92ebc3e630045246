"""Side-by-side image grid: per reference image, the reference and each decoder's output (latest runs).

On the generate track the reference image is only the caption's photo (not a target); a decoder that compared
its output with a per-seed source image (l2p: the ``ldm+vae`` image of the same prompt and seed) also shows that
image, labelled "source", just before its output.

Thumbnails come from the store's ``images`` table and are embedded once each through
:class:`qa.report.thumbs.ImagePool` (CSS classes with data: URIs). A decoder's map (``map:invented_detail`` when
present, else its first ``map:*``) is stacked over its output as a red overlay and shown with a checkbox (pure
CSS, no script, no network). Under each output: the per-image values of a few key metrics for the stored seed,
with "missing"/"error" and the reason where there is no value.
"""

from __future__ import annotations

from qa.report.charts import pick_plane_metrics
from qa.report.data import ImageRow, ReportData, RunInfo
from qa.report.safe import esc, fmt
from qa.report.thumbs import IMAGE_BUDGET, OVERLAY_PERCENTILE, ImagePool, overlay_gain

#: the preferred map kind
PREFERRED_MAP = "map:invented_detail"


def map_kind(data: ReportData, run_id: str) -> str | None:
    """The map shown for ``run_id``: invented detail if stored, else the first stored map kind."""
    kinds = sorted({k for (r, _, k) in data.images if r == run_id and k.startswith("map:")})
    if PREFERRED_MAP in kinds:
        return PREFERRED_MAP
    return kinds[0] if kinds else None


def _caption_metrics(data: ReportData) -> list[str]:
    x, y = pick_plane_metrics(data)
    names = [m for m in (x, y) if m]
    shown = {(map_kind(data, r.run_id) or "")[4:] for r in data.latest.values()} - {""}
    names += sorted(shown - set(names))
    if not names:  # fall back to the first two metrics with per-image rows
        names = sorted({r.metric for r in data.image_rows if r.metric != "case"})[:2]
    return names


def _values(rows: list[ImageRow], metrics: list[str]) -> str:
    """The value of each metric for one case (the lowest seed stored, i.e. the thumbnail's seed)."""
    by_metric: dict[str, ImageRow] = {}
    for row in sorted(rows, key=lambda x: x.seed):
        by_metric.setdefault(row.metric, row)
    parts = []
    for m in metrics:
        r: ImageRow | None = by_metric.get(m)
        if r is None:
            parts.append(f'{esc(m)} <span class="missing" title="not computed">missing</span>')
        elif r.status != "ok" or r.value is None:
            word = "error" if r.status == "error" else "missing"
            parts.append(f'{esc(m)} <span class="missing" title="{esc(r.detail)}">{word}</span>'
                         f'<span class="reason small">{esc(r.detail[:80])}</span>')
        else:
            parts.append(f"{esc(m)} {esc(fmt(r.value))}")
    return "<br>".join(parts)


def _img(cls: str | None, role: str, alt: str) -> str:
    """A thumbnail element (its image is the CSS class ``cls`` of the pool), or a note that there is none."""
    if cls is None:
        return f'<div class="noimg {role}">{esc(alt)}: no thumbnail stored</div>'
    return f'<div class="img {role} {cls}" role="img" aria-label="{esc(alt)}"></div>'


def _cell(data: ReportData, pool: ImagePool, run: RunInfo, case_id: str, rows: list[ImageRow],
          metrics: list[str], gains: dict[str, float]) -> str:
    out = pool.add(data.images.get((run.run_id, case_id, "output")))
    kind = map_kind(data, run.run_id)
    over = pool.add(data.images.get((run.run_id, case_id, kind)), overlay=True, gain=gains.get(kind, 1.0)) \
        if kind else None
    layer = _img(over, "map", f"{run.decoder} {kind}") if over else ""
    base = data.images.get((run.run_id, case_id, "baseline"))
    source = (f'<figure class="cell"><div class="stack">{_img(pool.add(base), "base", f"{run.decoder} source")}'
              f"</div><figcaption><b>source</b> of {esc(run.decoder)}<br>same prompt and seed</figcaption></figure>"
              ) if base is not None else ""
    return (f'{source}<figure class="cell"><div class="stack">{_img(out, "out", run.decoder)}{layer}</div>'
            f"<figcaption><b>{esc(run.decoder)}</b><br>{_values(rows, metrics)}</figcaption></figure>")


def grid_section(data: ReportData, budget: int = IMAGE_BUDGET) -> str:
    """The grid for every reference set used by a latest run, its images within ``budget`` bytes of base64."""
    if not data.latest:
        return ""
    metrics = _caption_metrics(data)
    rows_by: dict[tuple[str, str], list[ImageRow]] = {}
    for r in data.image_rows:
        rows_by.setdefault((r.run_id, r.case_id), []).append(r)
    by_set: dict[str, list[RunInfo]] = {}
    for d in data.decoders:
        by_set.setdefault(data.latest[d].reference_set_sha256, []).append(data.latest[d])
    shown = {r.run_id: map_kind(data, r.run_id) for r in data.latest.values()}
    kinds = sorted({k for k in shown.values() if k})
    gains = {k: overlay_gain([png for (r, _, kk), png in data.images.items() if kk == k and shown.get(r) == k])
             for k in kinds}
    scale = "; ".join(f"{esc(k[4:])}: full red = stored level {255 / g:.0f}/255" for k, g in gains.items())
    parts = ['<input type="checkbox" id="overlay-toggle" class="toggle">'
             '<label for="overlay-toggle" class="toggle-label">show the '
             f'{esc(" / ".join(k[4:] for k in kinds) or "invented-detail")} map over each output '
             '(red = more)</label>'
             + (f' <span class="reason">one scale for every decoder ({scale}, the {OVERLAY_PERCENTILE:g}th '
                "percentile of the maps shown)</span>" if gains else "")]
    if not kinds:
        parts.append('<p class="muted">no maps stored for the latest runs: no metric that produces a per-pixel '
                     "map (e.g. invented_detail) was computed</p>")
    parts.append('<div class="grids">')
    pool = ImagePool(budget=budget)
    for sha, runs in by_set.items():
        cases = sorted({c for (r, c, k) in data.images if k == "reference" and any(r == x.run_id for x in runs)}
                       | {r.case_id for r in data.image_rows if any(r.run_id == x.run_id for x in runs)})
        parts.append(f"<h3>reference set {esc(runs[0].reference_set)} <code>{esc(sha[:12])}</code></h3>")
        for case_id in cases:
            ref = next((data.images[(x.run_id, case_id, "reference")] for x in runs
                        if (x.run_id, case_id, "reference") in data.images), None)
            caption = data.captions.get((sha, case_id), "")
            cells = [f'<figure class="cell"><div class="stack">{_img(pool.add(ref), "ref", "reference")}</div>'
                     f"<figcaption><b>reference</b> {esc(case_id)}<br><i>{esc(caption)}</i></figcaption></figure>"]
            cells += [_cell(data, pool, x, case_id, rows_by.get((x.run_id, case_id), []), metrics, gains)
                      for x in runs]
            parts.append(f'<div class="row">{"".join(cells)}</div>')
    parts.append("</div>")
    css = pool.css()
    note = (f'<p class="warn">{len(pool)} distinct images: shrunk to {pool.scale:.0%} of their stored size to keep '
            f"the file small (the store keeps the full thumbnails)</p>") if pool.scale < 1.0 else ""
    return f"<style>{css}</style>{note}" + "".join(parts)
