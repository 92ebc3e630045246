"""The HTML report: self-contained, escaped, missing values shown as missing, selection options, PNG export."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from qa.cli.main import main
from qa.errors import QAError
from qa.report.build import write_report
from qa.report.gates import entries_of
from qa.report.safe import script_json
from qa.store import Store
from tests.report.conftest import ReportStore
from tests.report.helpers import HOSTILE, MAP_METRIC, MISSING_METRIC, MISSING_REASON, UNKNOWN_METRIC, XSS

JSON_BLOCK = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.S)


def _report(rs: ReportStore, name: str, **kw: object) -> str:
    path = write_report(rs.store, out=rs.root / name, **kw)  # type: ignore[arg-type]
    return path.read_text(encoding="utf-8")


def _section(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start : text.index("</section>", start)]


def _row(section: str, first_cell: str) -> str:
    rows = [r for r in section.split("<tr>") if r.startswith(f"<td>{first_cell}")]
    assert len(rows) == 1, f"expected one row starting with {first_cell!r}"
    return rows[0]


def test_self_contained_plotly_once_and_no_network(report_store: ReportStore) -> None:
    text = _report(report_store, "all.html")
    js = get_plotlyjs()
    assert text.count(js) == 1
    assert text.count("* plotly.js v") == 1
    rest = text.replace(js, "")
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', rest, re.I)
    assert "<link" not in rest and "@import" not in rest
    plots = re.findall(r'<div class="plot" id="plot-(\w+)" data-fig="fig-\1">', text)
    assert sorted(plots) == ["distributions", "plane", "trends"]
    # every <script> is ours: plotly.js, one JSON element per chart, the drawing script
    assert text.count("<script") == 2 + len(plots)
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1))
    assert "default-src 'none'" in csp and "img-src data:" in csp and "unsafe-inline" not in csp.split(";")[1]


def test_every_hostile_string_is_escaped(report_store: ReportStore) -> None:
    text = _report(report_store, "all.html")
    body = text.replace(get_plotlyjs(), "")
    for s in HOSTILE:
        assert s not in body, s
    assert html.escape(XSS) in body  # shown as text: decoder name, run id, reviewer, gate entries
    assert body.count("<script") == body.count("</script>")
    for fig_id, payload in JSON_BLOCK.findall(body):
        assert "<" not in payload and ">" not in payload, fig_id
        spec = json.loads(payload)
        names = {t.get("name") for t in spec["data"]}
        assert XSS not in names
        if fig_id != "fig-plane" or any(t.get("name") == html.escape(XSS) for t in spec["data"]):
            assert html.escape(XSS) in names, fig_id


def test_missing_metric_shows_missing_with_reason(report_store: ReportStore) -> None:
    text = _report(report_store, "all.html")
    metrics = _section(text, "metrics")
    row = _row(metrics, html.escape(MISSING_METRIC))
    cells = row.split("<td>")[2:]
    assert len(cells) == 3
    for cell in cells:
        assert '<span class="missing">missing</span>' in cell and 'class="fn"' in cell  # its reason: a footnote
        assert not re.search(r"^\s*-?\d", re.sub(r"<[^>]+>", "", cell))  # no number in place of the value
    assert metrics.count(html.escape(MISSING_REASON)) == 1  # said once, under the table (issue 27)
    missing = _section(text, "missing")
    assert missing.count(html.escape(MISSING_REASON)) == 3  # one line per decoder
    # the map metric was computed: its values are numbers and its maps are overlaid in the grid
    assert _row(metrics, html.escape(MAP_METRIC) + " &darr;").count('class="missing"') == 0
    images = _section(text, "images")
    assert images.count('class="img map t') == 4 * 3 and images.count('class="img ref t') == 4
    assert images.count('class="img out t') == 4 * 3
    assert 'type="checkbox" id="overlay-toggle"' in images


def test_unknown_metric_and_broken_gate_json_are_shown_not_fatal(report_store: ReportStore) -> None:
    text = _report(report_store, "all.html")
    assert "1.5 <span class=\"ci\">[1, 2]</span>" in _row(_section(text, "metrics"), UNKNOWN_METRIC)
    gates = _section(text, "gates")
    assert "details_json is not valid JSON" in gates
    assert gates.count('<span class="verdict ok">pass</span>') >= 2
    assert '<span class="verdict bad">fail</span>' in gates and "0.2" in gates
    summary = _section(text, "summary")  # the sign-off written into the table by hand is shown, never counted
    assert '<span class="verdict bad">reject</span>' not in summary and "not signed off" in summary
    signoffs = _section(text, "signoffs")
    assert "approvals not verified" in signoffs and "the chain does not verify" in signoffs
    assert "do not count" in signoffs and "not verified (no trusted-keys file)" in signoffs


def test_weekly_since_and_decoder_filters(report_store: ReportStore) -> None:
    old, new = report_store.ids["bicubic"]
    weekly = _report(report_store, "weekly.html", weekly=True)
    assert new in weekly and f"<code>{old}</code> (latest run before the report window" in weekly
    assert old not in _section(weekly, "runs")
    everything = _report(report_store, "since.html", since="2000-01-01")
    assert old in _section(everything, "runs")
    only = _report(report_store, "identity.html", decoders=["identity"])
    assert report_store.ids["identity"][0] in only and new not in only
    assert html.escape(report_store.ids[XSS][0]) not in only
    with pytest.raises(QAError, match="not an ISO date"):
        write_report(report_store.store, out=report_store.root / "x.html", since="last tuesday")
    with pytest.raises(QAError, match="--weekly and --since"):
        write_report(report_store.store, out=report_store.root / "x.html", weekly=True, since="2020-01-01")


def test_size_is_plotly_plus_small_thumbnails(report_store: ReportStore) -> None:
    path = write_report(report_store.store, out=report_store.root / "size.html")
    extra = path.stat().st_size - len(get_plotlyjs().encode())
    assert 0 < extra < 1_000_000, extra  # 4 tiles x (reference + 3 outputs + 3 maps) and the tables


def test_cli_writes_the_report(report_store: ReportStore, capsys: pytest.CaptureFixture[str]) -> None:
    out = report_store.root / "cli.html"
    rc = main(["report", "--db", str(report_store.store.path), "--out", str(out), "--decoder", "bicubic"])
    assert rc == 0 and capsys.readouterr().out.strip() == str(out)
    assert report_store.ids["bicubic"][1] in out.read_text(encoding="utf-8")


def test_empty_store_reports_no_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.duckdb")
    with store.connect():
        pass  # creates and migrates
    text = write_report(store, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No runs match this selection." in text


def test_script_json_cannot_close_a_script() -> None:
    obj = {"a": list(HOSTILE), "b": "x & y > z \u2028"}
    text = script_json(json.dumps(obj))
    assert not set("<>&") & set(text) and json.loads(text) == obj


@pytest.mark.parametrize(
    ("details", "n_entries", "rest"),
    [
        ([{"metric": "psnr", "verdict": "pass"}], 1, {}),
        ({"verdict": "fail", "checks": {"psnr": {"diff": -1.0}, "ssim": {"diff": 0.1}}}, 2, {"verdict": "fail"}),
        ({"verdict": "pass", "note": "no entries"}, 0, {"verdict": "pass", "note": "no entries"}),
        ("just text", 0, {"details": "just text"}),
        (None, 0, {}),
    ],
)
def test_gate_details_layouts(details: object, n_entries: int, rest: dict[str, object]) -> None:
    entries, other = entries_of(details)
    assert len(entries) == n_entries and other == rest
    assert all("metric" in e for e in entries if isinstance(details, dict))


def test_png_export_error_names_what_is_missing(report_store: ReportStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(report_store.root / "no-such-chromium"))
    with pytest.raises(QAError, match="needs Chromium.*BROWSER_PATH"):
        write_report(report_store.store, out=report_store.root / "p.html", png_dir=report_store.root / "png0")
    monkeypatch.delenv("BROWSER_PATH")
    monkeypatch.setitem(__import__("sys").modules, "kaleido", None)
    with pytest.raises(QAError, match="needs the kaleido package"):
        write_report(report_store.store, out=report_store.root / "p.html", png_dir=report_store.root / "png1")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (CI installs it)")
def test_png_export_with_kaleido(report_store: ReportStore) -> None:
    from PIL import Image

    png_dir = report_store.root / "png"
    write_report(report_store.store, out=report_store.root / "p.html", png_dir=png_dir)
    for name in ("trends", "plane", "distributions"):
        with Image.open(png_dir / f"{name}.png") as img:
            assert img.format == "PNG" and img.width == 1400 and img.height >= 400
            assert len(img.convert("RGB").getcolors(1 << 20) or []) > 50  # drawn, not blank


def test_a_file_that_is_not_a_qa_store_is_a_clear_error(tmp_path: Path) -> None:
    import duckdb

    from qa.errors import StoreError

    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(StoreError, match="cannot read the report's data from .*other.duckdb"):
        write_report(Store(path), out=tmp_path / "r.html")
    with pytest.raises(StoreError, match="does not exist"):
        write_report(Store(tmp_path / "absent.duckdb"), out=tmp_path / "r.html")


def test_thumbnails_are_lossless_deduplicated_and_within_budget(report_store: ReportStore) -> None:
    import base64
    import io

    import numpy as np
    from PIL import Image

    from qa.report.thumbs import ImagePool

    pngs = [bytes(r[0]) for r in report_store.store.query("select png from images where kind = 'output' order by 1")]
    pool = ImagePool()
    names = [pool.add(p) for p in pngs] + [pool.add(pngs[0]), pool.add(b"not a png")]
    assert names[-1] is None and names[-2] == names[0] and len(pool) == len(set(pngs))
    css = pool.css()
    embedded = dict(re.findall(r"\.(t\d+)\{background-image:url\(data:image/(?:png|webp);base64,([^)]*)\)", css))
    for name, png in zip(names, pngs, strict=False):
        with Image.open(io.BytesIO(base64.b64decode(embedded[name]))) as got, Image.open(io.BytesIO(png)) as want:
            assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(want.convert("RGB")))
    small = ImagePool(budget=pool.bytes * 3 // 4)
    for p in pngs:
        small.add(p)
    small.css()
    assert small.scale < 1.0 and small.bytes <= pool.bytes * 3 // 4


def test_metrics_that_apply_to_no_run_are_listed_once_not_as_rows() -> None:
    """The generate track has no pixel-aligned reference: psnr is 'not applicable' for every run, so the metrics
    table names it in one line; a metric missing for another reason (weights) keeps its row with the reason."""
    from types import SimpleNamespace

    from qa.report.data import SetRow
    from qa.report.sections import set_results_section

    na = SetRow(None, None, None, 0, "missing", "64 rows missing (64 x missing: not applicable: needs reference)")
    weights = SetRow(None, None, None, 0, "missing", "weights 'inception-fid' absent; fix: `qa weights fetch`")
    ok = SetRow(10.0, 9.0, 11.0, 32, "ok", "")
    data = SimpleNamespace(
        decoders=["l2p", "ldm+vae"], image_rows=[],
        latest={"l2p": SimpleNamespace(run_id="r1"), "ldm+vae": SimpleNamespace(run_id="r2")},
        set_results={"r1": {"psnr": na, "fid": weights, "seed_alignment": ok, "agreement_psnr": ok},
                     "r2": {"psnr": na, "fid": weights, "seed_alignment": na, "agreement_psnr": na}},
    )
    text = set_results_section(data)  # type: ignore[arg-type]
    table, _, note = text.partition("</table>")
    assert "<td>psnr" not in table and "psnr" in note and "Not applicable to any of these runs" in note
    assert "<td>fid" in table and "weights" in note  # missing for a fixable reason: stays a row, reason below
    assert "<td>seed_alignment" in table and "not applicable" in note  # applies to one run: a row for both
    assert "agreement_psnr &uarr; <span class=\"muted\">(dB)</span>" in table  # audit D2: each metric's unit


def test_plotly_labels_escape_quotes_as_numeric_references() -> None:
    from qa.report.safe import label

    # Plotly decodes &lt; &gt; &amp; and numeric references, but shows &quot; literally (the old double escape)
    assert label('a"b\'<c>&') == "a&#34;b&#39;&lt;c&gt;&amp;"
    assert "&quot;" not in label('"') and "&#x27;" not in label("'")


def test_the_report_names_only_registered_metrics() -> None:
    """The charts' fixed metric lists (perception-distortion plane) name metrics of the catalogue."""
    from qa.metrics.catalog import METRICS
    from qa.report.charts import DISTORTION_METRICS, PERCEPTION_METRICS

    assert [m for m in DISTORTION_METRICS + PERCEPTION_METRICS if m not in METRICS.names()] == []


def test_a_pass_without_an_approved_run_never_shows_alone(report_store: ReportStore) -> None:
    summary = _section(_report(report_store, "all.html"), "summary")
    rows = [r for r in summary.split("<tr>")[2:] if '<span class="verdict ok">pass</span>' in r]
    assert rows  # the store holds passing gates
    for row in rows:
        approved_cell = row.split("<td>")[9]
        unanchored = "muted\">none</span>" in approved_cell
        assert ("against no approved baseline" in row) == unanchored, row
    assert any("against no approved baseline" in r for r in rows)


def test_compare_view_and_grid_share_one_image_budget(report_store: ReportStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 MB compare view leaves the grid IMAGE_BUDGET - 4 MB (the demo's store gave 15.6 MB pages before)."""
    import qa.report.build as build
    from qa.report.thumbs import IMAGE_BUDGET

    budgets: list[int] = []
    real_grid = build.grid_section

    def spy(data, budget):  # noqa: ANN001, ANN202
        budgets.append(budget)
        return real_grid(data, budget)

    big = "<p>" + "x" * 4_000_000 + "</p>"
    monkeypatch.setattr(build, "compare_section", lambda data: big)
    monkeypatch.setattr(build, "grid_section", spy)
    write_report(report_store.store, out=report_store.root / "budget.html")
    text_bytes = len(build.text_section(build.load(report_store.store, build.make_selection())))
    assert budgets == [IMAGE_BUDGET - len(big) - text_bytes]
    monkeypatch.setattr(build, "compare_section", lambda data: "<p>" + "x" * 20_000_000 + "</p>")
    write_report(report_store.store, out=report_store.root / "budget2.html")
    assert budgets[-1] == IMAGE_BUDGET // 4  # never less than a quarter: the grid stays usable


def test_first_runs_are_said_once_and_compared_runs_keep_their_table() -> None:
    """A first demo has only first runs: "nothing to compare" is one line naming them all (escaped), not a
    heading and a line per decoder; a decoder with a comparison run keeps its heading and delta table."""
    from types import SimpleNamespace

    from qa.report.data import SetRow
    from qa.report.sections import changes_section

    old, new = SetRow(30.0, 29.0, 31.0, 4, "ok", ""), SetRow(28.0, 27.0, 29.0, 4, "ok", "")
    data = SimpleNamespace(
        decoders=["pid", XSS, "vae"],
        latest={"pid": SimpleNamespace(run_id="r2"), XSS: SimpleNamespace(run_id="r3"),
                "vae": SimpleNamespace(run_id="r4")},
        comparison={"pid": SimpleNamespace(run_id="r1")}, comparison_kind={"pid": "approved"},
        set_results={"r1": {"psnr": old}, "r2": {"psnr": new}},
    )
    text = changes_section(data)  # type: ignore[arg-type]
    assert text.count("nothing to compare") == 1 and XSS not in text
    assert f"no earlier finished run of {html.escape(XSS)}, vae on the same reference images" in text
    assert "<h3>pid</h3>" in text and "<h3>vae</h3>" not in text and "<td>psnr" in text and "worse" in text


def test_what_changed_uses_the_one_sign_worse_by_with_units() -> None:
    """Audit D1: the table said "delta" (new - old: psnr +3 "better", distortion -0.002 "better") beside a gate
    table saying "worse by" -3 for the same comparison. Now every directed metric shows worse by (+ = worse) in
    its unit; a metric without a direction shows its plain change, said so."""
    from types import SimpleNamespace

    from qa.report.data import SetRow
    from qa.report.sections import changes_section

    rows = {"psnr": (SetRow(25.0, 24.0, 26.0, 4, "ok", ""), SetRow(28.0, 27.5, 28.5, 4, "ok", "")),
            "invented_detail": (SetRow(0.01, 0.0, 0.02, 4, "ok", ""), SetRow(0.03, 0.025, 0.035, 4, "ok", "")),
            "seed_variance": (SetRow(0.01, 0.0, 0.02, 4, "ok", ""), SetRow(0.02, 0.015, 0.025, 4, "ok", ""))}
    data = SimpleNamespace(decoders=["pid"], latest={"pid": SimpleNamespace(run_id="r2")},
                           comparison={"pid": SimpleNamespace(run_id="r1")}, comparison_kind={"pid": "approved"},
                           set_results={"r1": {m: o for m, (o, _) in rows.items()},
                                        "r2": {m: n for m, (_, n) in rows.items()}})
    text = changes_section(data)  # type: ignore[arg-type]
    assert "worse by (+ = worse)" in text and "delta" not in text
    cells = {m: text.split(f"<td>{m}")[1].split("</tr>")[0] for m in rows}
    assert "<td>-3 dB</td>" in cells["psnr"] and "better" in cells["psnr"]
    assert "<td>+0.02 fraction of band energy</td>" in cells["invented_detail"] and "worse" in cells["invented_detail"]
    assert "now - before +0.01" in cells["seed_variance"] and "no better or worse" in cells["seed_variance"]


def test_what_changed_does_not_compare_across_metric_versions() -> None:
    """Report audit H2: a metric whose definition changed between the runs is not a change of the decoder."""
    from qa.report.data import SetRow
    from qa.report.sections import _change

    old, new = SetRow(30.0, 29.0, 31.0, 4, "ok", "", "1"), SetRow(28.0, 27.0, 29.0, 4, "ok", "", "2")
    row = _change("psnr", old, new)
    assert row is not None and "not comparable: metric version 1 -> 2" in row[-1] and "worse" not in row[-1]
    same = _change("psnr", old, SetRow(28.0, 27.0, 29.0, 4, "ok", "", "1"))
    assert same is not None and "worse" in same[-1]
