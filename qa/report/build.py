"""``write_report``: one self-contained HTML file from the store (opens from disk, no network).

plotly.js is inlined once; each figure's JSON sits in a ``<script type="application/json">`` element (made safe
with :func:`qa.report.safe.script_json`) and one small script draws them all. A Content-Security-Policy allows
only the page's own inline scripts (by hash), inline styles and data: images, so the page can reach no network
and no injected script can run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from qa import __version__
from qa.report import charts, sections
from qa.report.compare import compare_section
from qa.report.data import ReportData, load, make_selection
from qa.report.gates import gates_section
from qa.report.grid import grid_section
from qa.report.safe import esc, script_json
from qa.report.text_crops import text_section
from qa.report.thumbs import IMAGE_BUDGET
from qa.store import Store

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#1d2733;color:#fff;padding:14px 24px}header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1da}main{padding:8px 24px 40px;max-width:1500px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:16px 0;padding:4px 16px 14px}
h2{font-size:17px;border-bottom:1px solid #eee;padding-bottom:4px}h3{font-size:15px;margin:14px 0 4px}
table.data{border-collapse:collapse;margin:6px 0;font-size:13px}
table.data th,table.data td{border:1px solid #e1e1e1;padding:3px 7px;text-align:left;vertical-align:top}
table.data th{background:#f3f5f7}code{font-size:12px;background:#f3f5f7;padding:0 3px;border-radius:3px}
.verdict{display:inline-block;padding:0 6px;border-radius:9px;font-weight:600;font-size:12px}
.ok{background:#d9f2de;color:#17612a}.bad{background:#fbdcdc;color:#9b1c1c}.warn{background:#fdf0cf;color:#7a5a00}
.muted{color:#777}.verdict.muted{background:#eee}.missing{color:#9b1c1c;font-weight:600}
.reason{color:#666;font-size:12px}.small{display:block;max-width:160px;overflow-wrap:anywhere}.ci{color:#555}
#js-errors{background:#fbdcdc;color:#9b1c1c;padding:8px 24px;font-weight:600}
.row{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 12px;align-items:flex-start}
.cell{margin:0;width:164px;font-size:12px}.stack{position:relative;width:160px;height:160px;background:#eee}
.stack .img{position:absolute;left:0;top:0;width:160px;height:160px;background-position:center;
background-size:contain;background-repeat:no-repeat}
.stack .img.map{display:none}.toggle:checked~.grids .stack .img.out{filter:grayscale(.7) brightness(.85)}
.toggle:checked~.grids .stack .img.map{display:block}.toggle-label{font-weight:600;cursor:pointer}
.noimg{width:160px;height:160px;display:flex;align-items:center;justify-content:center;text-align:center;color:#777}
ul.kv{margin:4px 0;padding-left:18px;font-size:12px}.gate{border-top:1px solid #eee;padding:4px 0}
nav a{margin-right:12px;color:#9cc3ff}header code{background:#2c3a49;color:#e8eef5}
.headline{background:#fff4f4;border:1px solid #f3c4c4;border-radius:6px;padding:6px 12px;margin:8px 0}
.headline ul{margin:4px 0}.failed-check{color:#9b1c1c;font-weight:600}.ok-text{color:#17612a;background:#f1fbf3}
.bad-text{color:#9b1c1c;font-weight:600}
table.fit{table-layout:auto;max-width:100%}table.fit td{overflow-wrap:anywhere}a.fn{font-size:11px}
ol.reasons{font-size:12px;margin:4px 0;padding-left:26px}
"""

#: where the crops' CSS goes (after everything else; an HTML comment no escaped data can contain)
CROPS_MARK = "<!--qa-crops-->"

RENDER_JS = """(function(){
var t0=performance.now(),n=0,errs=[],root=document.documentElement;
function fail(m){errs.push(m);var b=document.getElementById('js-errors');b.hidden=false;
b.textContent='chart errors: '+errs.join('; ');root.setAttribute('data-js-errors',errs.length);}
window.addEventListener('error',function(e){fail(String(e.message));});
if(typeof Plotly==='undefined'){fail('plotly.js did not load');}else{
document.querySelectorAll('div.plot[data-fig]').forEach(function(div){
try{var spec=JSON.parse(document.getElementById(div.getAttribute('data-fig')).textContent);
Plotly.newPlot(div,spec.data,spec.layout,{displaylogo:false,responsive:true,showLink:false,
showSendToCloud:false,showEditInChartStudio:false});n++;}catch(e){fail(div.id+': '+e.message);}});}
var imgs=document.querySelectorAll('.stack .img'),painted=0;imgs.forEach(function(e){
if(getComputedStyle(e).backgroundImage.indexOf('url(')===0){painted++;}});
root.setAttribute('data-thumbs',imgs.length);root.setAttribute('data-thumbs-with-image',painted);
root.setAttribute('data-plots-rendered',n);root.setAttribute('data-js-errors',errs.length);
var mt=document.querySelector('#metrics table');if(mt){root.setAttribute('data-metrics-table-right',
Math.round(mt.getBoundingClientRect().right));}root.setAttribute('data-page-width',root.scrollWidth);
root.setAttribute('data-render-ms',Math.round(performance.now()-t0));
root.setAttribute('data-ready-ms',Math.round(performance.now()));})();"""


def _figure_html(name: str, fig: go.Figure | None, note: str) -> tuple[str, str]:
    """(div + JSON data element, note paragraph). A figure that is None leaves only its note."""
    note_html = f'<p class="muted">{esc(note)}</p>' if note else ""
    if fig is None:
        return "", note_html
    payload = script_json(pio.to_json(fig, validate=False, pretty=False))
    return (f'<div class="plot" id="plot-{name}" data-fig="fig-{name}"></div>'
            f'<script type="application/json" id="fig-{name}">{payload}</script>'), note_html


def _csp(scripts: list[str]) -> str:
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
                      for s in scripts)
    # images: embedded (data:) or crops written beside the report ('self': the report's own folder, file: or http:)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data: 'self'; "
            "font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")


def figures(data: ReportData) -> dict[str, tuple[go.Figure | None, str]]:
    """The report's figures by name, each with a note on what it leaves out."""
    return {"trends": charts.trends_figure(data), "plane": charts.plane_figure(data),
            "distributions": charts.distributions_figure(data)}


def render(data: ReportData, figs: dict[str, tuple[go.Figure | None, str]] | None = None) -> str:
    """The whole HTML document for ``data``."""
    figs = figs if figs is not None else figures(data)
    plotly_js = get_plotlyjs()
    sel = data.selection
    filt = f" &middot; decoders: {esc(', '.join(sel.decoders))}" if sel.decoders else ""
    blocks = {name: _figure_html(name, fig, note) for name, (fig, note) in figs.items()}
    body: list[tuple[str, str, str]] = []
    if not data.latest:
        body.append(("summary", "Summary", "<p class='missing'>No runs match this selection.</p>"))
    else:
        # the compare view, the text crops and the grid share one image budget (IMAGE_BUDGET bytes of base64):
        # the compare view and the text crops answer the reviewer's questions first, the grid gets what is left
        # (at least a quarter, shrunk by one common factor beyond), so the page stays under its size target
        compare = compare_section(data)
        text = text_section(data)  # only where a latest run has text metrics
        grid_budget = max(IMAGE_BUDGET // 4, IMAGE_BUDGET - len(compare) - len(text))
        body += [
            ("summary", "Summary: failed checks, gate verdicts and sign-off", sections.summary_section(data)),
            ("compare", "Candidate vs approved, per image (worst first)", compare),
            ("changes", "What changed against the approved run (else the previous run)", sections.changes_section(data)),
            ("metrics", "Metrics of the latest runs (mean [95% bootstrap interval])",
             sections.set_results_section(data)),
            ("trends", "Metric trends, run by run (anchored on the approved run)", blocks["trends"][1] + blocks["trends"][0]),
            ("plane", "Perception-distortion plane", blocks["plane"][1] + blocks["plane"][0]),
            ("distributions", "Per-image distributions (latest runs)",
             blocks["distributions"][1] + blocks["distributions"][0]),
            ("missing", "Missing and failed values", sections.missing_section(data)),
            ("images", "Images side by side (latest runs)", grid_section(data, grid_budget)),
            ("gates", "Gate table", gates_section(data)),
            ("signoffs", "Sign-offs", sections.signoffs_section(data)),
            ("runs", "Runs in this report", sections.runs_section(data)),
        ]
        if text:
            body.insert(-5, ("text", "Text: worst crops (reference says, output says)", text))
    nav = "".join(f'<a href="#{sid}">{esc(title.split(" (")[0].split(":")[0])}</a>' for sid, title, _ in body)
    main = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2>{html}</section>' for sid, title, html in body)
    csp = _csp([plotly_js, RENDER_JS])
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>qa report: {esc(sel.label)}</title><style>{CSS}</style>"
        f"<script>{plotly_js}</script></head><body>"
        f"<header><h1>qa report</h1><p>{esc(sel.label)}{filt} &middot; generated {data.generated_at:%Y-%m-%d %H:%M} UTC"
        f" by qa {esc(__version__)} from <code>{esc(data.db_path)}</code></p><nav>{nav}</nav></header>"
        '<div id="js-errors" hidden></div>'
        f"<main>{main}</main>{CROPS_MARK}<script>{RENDER_JS}</script></body></html>\n"
    )
    # the compare view's crops last: embedded within what the rest of the page leaves of its size budget
    head, _, tail = page.rpartition(CROPS_MARK)  # the last one: data is escaped and cannot hold a "<"
    crop_css = data.crops.css(len(head.encode()) + len(tail.encode()))
    linked = len(data.crops.linked)
    note = (f'<p class="linked-crops">{linked} of the 1:1 crops are files in <code>{esc(data.crops.folder)}/</code> '
            "beside this report (past its size budget): copy that folder with it, or they show blank</p>"
            if linked else "")
    return head + (f"<style>{crop_css}</style>" if crop_css else "") + note + tail


def crop_folder(out: Path) -> Path:
    """Where the crops a report links (rather than embeds) are written: ``<name>_crops/`` beside it."""
    return out.with_name(f"{out.stem}_crops")


#: files qa writes into a crop folder (and so may delete there): a hash and an image suffix
_CROP_FILE = re.compile(r"[0-9a-f]{24}\.(png|webp)")


def linked_crops_note(out: Path) -> str:
    """What `qa report` prints after the report's path when crops of ``out`` are files beside it ('' when none)."""
    folder = crop_folder(out)
    n = sum(1 for p in folder.iterdir() if _CROP_FILE.fullmatch(p.name)) if folder.is_dir() else 0
    return f"crops: {folder} ({n} files the report links past its size budget: keep the folder beside it)" if n else ""


def write_crops(folder: Path, files: dict[str, bytes]) -> None:
    """Write the linked crops (name -> bytes) into ``folder`` and remove crop files of earlier reports there that
    this one no longer refers to (only files named like qa's own; nothing else is touched). No folder is made
    when nothing is linked and none exists."""
    if not files and not folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != len(data):  # named by hash: same name, same bytes
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, path)
    for old in folder.iterdir():
        if _CROP_FILE.fullmatch(old.name) and old.name not in files:
            old.unlink()


def write_report(store: Store, out: Path | str = Path("reports/report.html"), weekly: bool = False,
                 since: str | None = None, decoders: list[str] | None = None, png_dir: Path | str | None = None,
                 trusted: Any = None) -> Path:
    """Write the report of the selected runs to ``out`` (atomically) and return its path.

    ``weekly``: runs of the last 7 days; ``since``: runs started at or after this ISO date (UTC);
    ``decoders``: only these decoders; ``png_dir``: also export the charts as PNG there (kaleido + Chromium);
    ``trusted``: the trusted-keys file that verifies approvals (default ``$QA_TRUSTED_KEYS``, then the setting).
    """
    out = Path(out)
    data = load(store, make_selection(weekly=weekly, since=since, decoders=decoders), trusted)
    data.crops.folder = crop_folder(out).name
    figs = figures(data)
    html = render(data, figs)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_crops(crop_folder(out), data.crops.linked)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    if png_dir is not None:
        from qa.report.export import export_pngs

        export_pngs({name: fig for name, (fig, _) in figs.items() if fig is not None}, Path(png_dir))
    return out
