"""The report's Plotly figures: trends, the perception-distortion plane, per-image distributions.

Every label that comes from the store is HTML-escaped before it becomes a trace name, tick label, title or
hover text (Plotly renders those as HTML-like text and decodes entities back to literal characters).
Non-finite values (e.g. PSNR of identical images, +inf) are never plotted; the figure says how many were left
out. Missing and failed values are never plotted either: the tables show them with their reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qa.metrics.declarations import declared_unit
from qa.report.data import ReportData, RunInfo, SetRow, target_of
from qa.report.safe import finite, fmt
from qa.report.safe import label as esc  # Plotly labels: quotes as numeric references, not &quot;

#: fidelity (distortion) metrics for the plane's x axis, in order of preference (registered names only: a test
#: checks them against the metric registry)
DISTORTION_METRICS = ("psnr", "ms_ssim", "ssim", "ssim_skimage")
#: realism / invented-detail metrics for the plane's y axis, in order of preference (registered names only)
PERCEPTION_METRICS = ("invented_detail", "fid", "kid", "cmmd")
#: colours per decoder, in sorted-name order (repeats after 10)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
#: subplot columns in the trend and distribution grids
COLUMNS = 3
#: line styles of a decoder's further trend lines (other reference set content or metric version), in order
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")

#: one trend line: (decoder, reference set content sha256, metric version); runs on other images or under another
#: definition of the metric are not comparable, so they never share a line
Line = tuple[str, str, str]


def colours(decoders: Iterable[str]) -> dict[str, str]:
    """A stable colour per decoder (sorted names)."""
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(sorted(decoders))}


def _direction(metric: str) -> str:
    """" (dB, higher is better)": the metric's unit and direction for a title ('' when it is not registered)."""
    target = target_of(metric)
    if target is None:
        return ""
    unit = declared_unit(metric)
    return f" ({unit + ', ' if unit else ''}{target.phrase()})"


def _stamp(run: RunInfo) -> str:
    return f"{run.started_at:%Y-%m-%d %H:%M:%S}" if run.started_at else ""


def _grid(n: int, titles: list[str], row_height: int = 280) -> go.Figure:
    rows = max(1, math.ceil(n / COLUMNS))
    fig = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=titles, vertical_spacing=min(0.15, 0.35 / rows),
                        horizontal_spacing=0.07)
    fig.update_layout(height=120 + row_height * rows, margin={"l": 50, "r": 20, "t": 60, "b": 40},
                      template="plotly_white", legend={"orientation": "h", "y": -0.02, "yanchor": "top"})
    return fig


def _bars(rows: list[SetRow]) -> dict[str, object]:
    """Asymmetric error bars from the bootstrap intervals of ``rows`` (0 where a bound is missing)."""
    up, down = [], []
    for r in rows:
        v = float(r.value) if r.value is not None else 0.0
        up.append(float(r.ci_high) - v if r.ci_high is not None and finite(r.ci_high) else 0.0)
        down.append(v - float(r.ci_low) if r.ci_low is not None and finite(r.ci_low) else 0.0)
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down, "thickness": 1}


def _decisions(data: ReportData) -> dict[str, str]:
    """run id -> its latest sign-off decision."""
    out: dict[str, str] = {}
    for s in data.signoffs:
        out[s.run_id] = s.decision
    return out


def _anchor(data: ReportData, line: Line, metric: str, points: list[tuple[int, RunInfo, SetRow]]
            ) -> tuple[float, str]:
    """(value, what it is) every point of ``line`` is drawn against: the decoder's approved run's value when that
    run is on the line's reference set content and metric version, else the line's first run's in the window."""
    decoder, sha, version = line
    approved = data.approved.get(decoder)
    row = data.set_results.get(approved.run_id, {}).get(metric) if approved else None
    if row is not None and row.status == "ok" and finite(row.value) and approved is not None \
            and _set_key(approved) == sha and row.metric_version == version:
        return float(row.value), "approved"  # type: ignore[arg-type]
    return float(points[0][2].value), "first run"  # type: ignore[arg-type]


def _worse_pct(metric: str, value: float, anchor: float) -> float:
    """How much worse ``value`` is than ``anchor``, in % of |anchor| (+ = worse; a metric without a direction:
    the plain change in %). An anchor of 0 gives the change itself (x 100)."""
    target = target_of(metric)
    change = (target.goodness(anchor) - target.goodness(value)) if target is not None and target.has_direction \
        else value - anchor
    return 100.0 * change / (abs(anchor) if abs(anchor) > 1e-12 else 1.0)


def _band(data: ReportData, run: RunInfo, metric: str, anchor: float) -> float | None:
    """The loss the track's shipped policy allows against the approved run, in % of |anchor| (None: no rule)."""
    policy = data.policies.get(run.track)
    rule = policy.metrics.get(metric) if policy is not None else None
    target = target_of(metric)
    if rule is None or target is None or not target.has_direction:
        return None
    allowed = rule.allowed_loss(target.goodness(anchor), decoder=False)
    return None if allowed is None else 100.0 * allowed / (abs(anchor) if abs(anchor) > 1e-12 else 1.0)


def _set_key(run: RunInfo) -> str:
    """What identifies the run's reference images: the set's content sha256 (its name for a run without one)."""
    return run.reference_set_sha256 or f"name:{run.reference_set}"


def _line_names(by_metric: dict[str, dict[Line, list[tuple[int, RunInfo, SetRow]]]]) -> dict[tuple[str, Line], str]:
    """(metric, line) -> its legend name: the decoder, and where the decoder's runs span several reference set
    contents, the set's name and short sha256; where they span several versions of the metric, the version."""
    sets: dict[str, set[str]] = {}
    versions: dict[tuple[str, str], set[str]] = {}
    for metric, lines in by_metric.items():
        for decoder, sha, version in lines:
            sets.setdefault(decoder, set()).add(sha)
            versions.setdefault((metric, decoder), set()).add(version)
    out = {}
    for metric, lines in by_metric.items():
        for line, points in lines.items():
            decoder, sha, version = line
            run = points[0][1]
            name = decoder + (f" · set {run.reference_set} {sha[:8]}" if len(sets[decoder]) > 1 else "")
            out[(metric, line)] = name + (f" · {metric} v{version or '?'}" if len(versions[(metric, decoder)]) > 1
                                          else "")
    return out


#: a trend panel's allowed-loss band widens its y-range only when at most this many times the span of its points
BAND_SPAN = 10.0


def _trend_runs(data: ReportData) -> list[tuple[int, RunInfo]]:
    """(x, run) of every run the trends draw: each decoder's approved run from before the window at x = 0 (its
    trend is read against it), then the window's runs numbered 1, 2, ... per decoder, oldest first."""
    out = [(0, run) for run in data.approved_before().values()]
    seq: dict[str, int] = {}
    for run in data.runs:
        seq[run.decoder] = seq.get(run.decoder, 0) + 1
        out.append((seq[run.decoder], run))
    return out


def _gaps(data: ReportData, runs: list[tuple[int, RunInfo]], line: Line, metric: str, first: int, last: int
          ) -> list[tuple[int, RunInfo, None]]:
    """The runs of ``line``'s decoder and reference set content between x ``first`` and ``last`` without a finite
    value of ``metric`` (not measured, missing, failed, non-finite): gaps in the line (y None), never bridged. A
    run with the metric under another version is on a line of its own, no gap of this one."""
    out: list[tuple[int, RunInfo, None]] = []
    for n, run in runs:
        row = data.set_results.get(run.run_id, {}).get(metric)
        if run.decoder == line[0] and _set_key(run) == line[1] and first < n < last \
                and (row is None or row.status != "ok" or not finite(row.value)):
            out.append((n, run, None))
    return out


def _y_range(ys: list[float], bands: list[float]) -> tuple[float, float]:
    """A trend panel's y-range, set by its points and 0 (the anchor), padded by 8% (+-0.5 when all are 0). An
    allowed-loss band widens it only when it is at most BAND_SPAN times the points' span (a span of 0 counts as 1
    percentage point), so the points keep at least 1/11 of the panel's height: a wider band (an absolute margin of
    0.0002 against an approved mean of 4.9e-7 is 4e4 %) would flatten every point onto 0. It is clipped to the
    range instead, and the note says so."""
    lo, hi = min(0.0, *ys), max(0.0, *ys)
    span = (hi - lo) or 1.0
    for b in bands:
        if abs(b) <= BAND_SPAN * span:
            lo, hi = min(lo, b), max(hi, b)
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def trends_figure(data: ReportData) -> tuple[go.Figure | None, str]:
    """Every metric per run as **how much worse than the decoder's approved value** (in % of that value; + =
    worse, the sign every gate output uses), so decoders of very different scales share one axis and a 5% change
    of a small metric is as tall as one of a large metric. x = the run's number within its decoder in the window
    (time and the absolute value on hover); the decoder's approved run is drawn too, a star at x = 0 when it is
    older than the window, so a decoder that runs once a week still has a line. One line per decoder, reference set
    content (sha256) and metric version: runs on other images or under another definition of the metric are on a
    line of their own (dashed, named by set and version in the legend, said in the note), never joined into a step
    no decoder made. A run of the line without a finite value of the metric is a gap, never bridged. Approved runs
    are stars, rejected ones crosses; the loss the track's policy allows against the approved run is a shaded band
    from 0 up to it (clipped to the points' range when it would flatten them, see :func:`_y_range`). A line
    without the approved run's set content and metric version is anchored on its first run (said in the note).
    Metrics with fewer than two runs of every decoder are not drawn (named in the note: "needs two runs").

    Returns the figure (None when nothing is plottable) and a note on what was left out.
    """
    runs = _trend_runs(data)
    before = data.approved_before()
    by_metric: dict[str, dict[Line, list[tuple[int, RunInfo, SetRow]]]] = {}
    skipped = 0
    for n, run in runs:
        for metric, row in data.set_results.get(run.run_id, {}).items():
            if row.status != "ok" or not finite(row.value):
                skipped += row.status == "ok"
                continue
            line = (run.decoder, _set_key(run), row.metric_version)
            by_metric.setdefault(metric, {}).setdefault(line, []).append((n, run, row))
    single = sorted(m for m, d in by_metric.items() if all(len(p) < 2 for p in d.values()))
    notes = [f"needs two runs of a decoder (not drawn): {', '.join(single)}"] if single else []
    notes += [f"{skipped} non-finite set value(s) not plotted"] if skipped else []
    metrics = sorted(m for m in by_metric if m not in single)
    if not metrics:
        return None, "; ".join(notes) or "no finite set-level values in the selected runs"
    decision = _decisions(data) | {r.run_id: "approve" for r in before.values()}
    fig = _grid(len(metrics), [esc(m) + esc(_direction(m)) for m in metrics])
    col = colours(data.decoders)
    shown: set[str] = set()
    unanchored: set[str] = set()
    names = _line_names(by_metric)
    split: dict[str, set[str]] = {}  # decoder -> why its runs are on several lines
    clipped: list[str] = []
    gapped = False
    for i, metric in enumerate(metrics):
        r, c = divmod(i, COLUMNS)
        lines = sorted(by_metric[metric].items(), key=lambda kv: (kv[0][0], kv[1][0][0]))  # decoder, first run
        drawn = []
        for line, points in lines:
            decoder = line[0]
            own = [k for k, _ in lines if k[0] == decoder]
            if len({k[1] for k in own}) > 1:
                split.setdefault(decoder, set()).add("reference set content")
            if len({k[2] for k in own}) > 1:
                split.setdefault(decoder, set()).add(f"{metric} version")
            anchor, what = _anchor(data, line, metric, points)
            if what != "approved":
                unanchored.add(names[(metric, line)])
            gaps = _gaps(data, runs, line, metric, points[0][0], points[-1][0])
            gapped |= bool(gaps)
            pts: list[tuple[int, RunInfo, SetRow | None]] = sorted([*points, *gaps], key=lambda p: p[0])
            ys = [None if row is None else _worse_pct(metric, float(row.value), anchor)  # type: ignore[arg-type]
                  for _, _, row in pts]
            band = _band(data, points[-1][1], metric, anchor) if what == "approved" and len(points) > 1 else None
            drawn.append((line, DASHES[own.index(line) % len(DASHES)], anchor, what, pts, ys, band))
        lo, hi = _y_range([y for d in drawn for y in d[5] if y is not None], [d[6] for d in drawn if d[6] is not None])
        for line, dash, anchor, what, pts, ys, band in drawn:
            decoder, name = line[0], names[(metric, line)]
            xs = [n for n, _, _ in pts]
            if band is not None:
                top = min(max(band, lo), hi)
                clipped += [f"{metric} ({decoder}: {band:.3g}%)"] if top != band else []
                fig.add_trace(go.Scatter(
                    x=[xs[0], xs[-1], xs[-1], xs[0]], y=[0, 0, top, top], fill="toself", mode="lines",
                    line={"width": 0}, fillcolor=col.get(decoder), opacity=0.12, showlegend=False,
                    legendgroup=esc(name), hoverinfo="text",
                    hovertext=f"{esc(decoder)}: allowed loss against the approved run ({band:.3g}%)"
                              + ("; beyond the panel, clipped" if top != band else "")),
                    row=r + 1, col=c + 1)
            hover = [f"{esc(decoder)} run #{n}<br>{esc(run.run_id)}<br>{esc(_stamp(run))} UTC"
                     + (" (before the window)" if n == 0 else "") + "<br>"
                     + (f"no finite {esc(metric)} value (a gap: see the tables)" if row is None else
                        f"set {esc(run.reference_set)} ({esc(run.reference_set_sha256[:12])})<br>{esc(metric)} "
                        f"v{esc(row.metric_version or '?')} = {fmt(row.value)} [{fmt(row.ci_low)}, "
                        f"{fmt(row.ci_high)}]<br>{what}: {fmt(anchor)}")
                     + (f"<br>{esc(decision[run.run_id].removesuffix('e'))}ed" if run.run_id in decision else "")
                     for n, run, row in pts]
            symbols = ["star" if decision.get(run.run_id) == "approve" else "x" if decision.get(run.run_id) == "reject"
                       else "circle" for _, run, _ in pts]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", connectgaps=False, name=esc(name), legendgroup=esc(name),
                showlegend=name not in shown, line={"color": col.get(decoder), "dash": dash},
                marker={"symbol": symbols, "size": [13 if s != "circle" else 7 for s in symbols]},
                hovertext=hover, hoverinfo="text"), row=r + 1, col=c + 1)
            shown.add(name)
        fig.update_yaxes(range=[lo, hi], row=r + 1, col=c + 1)
    zero = "; 0: the approved run, from before the window" if before else ""
    fig.update_xaxes(title_text=f"run # (per decoder{zero})", dtick=1)
    fig.update_yaxes(title_text="worse by, % of approved" + (" (or first) run" if unanchored else ""),
                     zeroline=True, zerolinecolor="#999")
    notes.append("y: how much worse than the decoder's approved value, in % of it (+ = worse, 0 = the approved "
                 "run; each decoder on its own scale, so small metrics stay visible); shaded: the loss the policy "
                 f"allows; x: run number per decoder in the window{zero} (time and value on hover); stars: approved, "
                 "crosses: rejected")
    if before:
        notes.append("approved run outside the window, drawn at run # 0: " + ", ".join(
            f"{d} ({r.run_id}, {r.started_at:%Y-%m-%d})" if r.started_at else d for d, r in before.items()))
    if gapped:
        notes.append("a gap in a line: a run on it without a finite value of that metric (not measured, missing "
                     "or failed: the tables say why)")
    if clipped:
        notes.append(f"allowed-loss band over {BAND_SPAN:g}x the points' spread, clipped to the panel (the points "
                     f"set the y-range): {', '.join(clipped)}")
    if split:
        notes.append("lines split (dashed: another line of the same decoder; set and version in the legend and on "
                     "hover), since means over other images or under another definition of a metric are no change "
                     "of the decoder: " + ", ".join(f"{d} ({' and '.join(sorted(w))})" for d, w in sorted(split.items())))
    if unanchored:
        notes.append("no approved run on the line's reference set content and metric version, anchored on the "
                     f"line's first run here: {', '.join(sorted(unanchored))}")
    return fig, "; ".join(notes)


def pick_plane_metrics(data: ReportData) -> tuple[str | None, str | None]:
    """(x, y) metrics of the perception-distortion plane among those with finite set values, or None."""
    present = {m for rows in data.set_results.values() for m, r in rows.items() if r.status == "ok" and finite(r.value)}
    x = next((m for m in DISTORTION_METRICS if m in present), None)
    y = next((m for m in PERCEPTION_METRICS if m in present), None)
    if y is None:  # a registered invented-detail variant under another name
        y = next((m for m in sorted(present) if "invented" in m and m != x), None)
    return x, y


def plane_figure(data: ReportData) -> tuple[go.Figure | None, str]:
    """The perception-distortion plane: one point per decoder and run (x fidelity, y realism/invention)."""
    x, y = pick_plane_metrics(data)
    if x is None or y is None:
        wanted_x = ", ".join(DISTORTION_METRICS)
        wanted_y = ", ".join(PERCEPTION_METRICS)
        missing = (f"no fidelity metric ({wanted_x})" if x is None else "") + (" and " if x is None and y is None else "")
        missing += f"no realism or invented-detail metric ({wanted_y})" if y is None else ""
        return None, f"not drawn: the selected runs have {missing} with finite set values"
    fig = go.Figure()
    col = colours(data.decoders)
    for decoder in data.decoders:
        pts = []
        for run in data.runs:
            if run.decoder != decoder:
                continue
            rows = data.set_results.get(run.run_id, {})
            rx, ry = rows.get(x), rows.get(y)
            if rx and ry and rx.status == ry.status == "ok" and finite(rx.value) and finite(ry.value):
                pts.append((run, rx, ry))
        if not pts:
            continue
        fig.add_trace(go.Scatter(
            x=[p[1].value for p in pts], y=[p[2].value for p in pts], mode="lines+markers",
            name=esc(decoder), marker={"size": [7] * (len(pts) - 1) + [13], "color": col.get(decoder)},
            line={"dash": "dot", "width": 1},
            error_x=_bars([p[1] for p in pts]), error_y=_bars([p[2] for p in pts]),
            hovertext=[f"{esc(decoder)}<br>{esc(p[0].run_id)}<br>{esc(x)} = {fmt(p[1].value)}<br>"
                       f"{esc(y)} = {fmt(p[2].value)}" for p in pts], hoverinfo="text"))
    fig.update_layout(template="plotly_white", height=460, margin={"l": 60, "r": 20, "t": 30, "b": 50},
                      xaxis_title=esc(x) + esc(_direction(x)), yaxis_title=esc(y) + esc(_direction(y)))
    return fig, f"x: {x}, y: {y}; the large marker is each decoder's latest run, dotted lines join its runs in time"


def distributions_figure(data: ReportData) -> tuple[go.Figure | None, str]:
    """Per-image values of the latest run of each decoder: one box per decoder per metric (all seeds)."""
    run_decoder = {r.run_id: r.decoder for r in data.latest.values()}
    vals: dict[str, dict[str, list[float]]] = {}
    nonfinite = 0
    for row in data.image_rows:
        if row.metric == "case" or row.status != "ok" or row.value is None:
            continue
        if not finite(row.value):
            nonfinite += 1
            continue
        vals.setdefault(row.metric, {}).setdefault(run_decoder.get(row.run_id, "?"), []).append(float(row.value))
    if not vals:
        return None, "no finite per-image values in the latest runs"
    metrics = sorted(vals)
    fig = _grid(len(metrics), [esc(m) + esc(_direction(m)) for m in metrics], row_height=300)
    col = colours(data.decoders)
    shown: set[str] = set()
    for i, metric in enumerate(metrics):
        r, c = divmod(i, COLUMNS)
        for decoder in data.decoders:
            ys = vals[metric].get(decoder)
            if not ys:
                continue
            fig.add_trace(go.Box(
                y=ys, name=esc(decoder), legendgroup=esc(decoder), showlegend=decoder not in shown,
                marker={"color": col.get(decoder), "size": 3}, boxpoints="outliers", boxmean=True),
                row=r + 1, col=c + 1)
            shown.add(decoder)
    fig.update_xaxes(showticklabels=False)
    note = f"{nonfinite} non-finite per-image value(s) (e.g. PSNR of identical images) not plotted" if nonfinite else ""
    return fig, note
