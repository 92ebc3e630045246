"""Issue 27's command line, end to end on a 6-tile set: `qa run --set` (stored like qa.toml's settings and
printed), `qa decoders` (effective settings), `qa diff` (nothing stored), `qa export` (Parquet and CSV, and the
`qa.store.frames` read API it uses), `latest`, `qa --version` with the commit, a description on every --help."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from qa.cli.main import build_parser, main
from qa.gate.data import run_settings
from qa.store import Store
from qa.store.frames import results_frame, runs_frame
from tests.helpers import make_refset


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """bicubic x4 (its default) and bicubic with `--set factor=2`, psnr and ssim, via `qa run`."""
    root = tmp_path_factory.mktemp("reviewcli")
    refset = make_refset(root / "set")
    db = root / "qa.duckdb"
    common = ["--reference-set", str(refset), "--metrics", "psnr,ssim", "--db", str(db), "--no-progress"]
    return {"root": root, "refset": refset, "db": db, "common": common}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def runs(world: dict[str, object]) -> dict[str, str]:
    import contextlib
    import io

    ids = {}
    for key, extra in (("x4", []), ("x2", ["--set", "factor=2"])):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["run", "--decoder", "bicubic", *extra, *world["common"]]) == 0  # type: ignore[list-item]
        ids[key] = out.getvalue().strip()
        ids[f"{key}_err"] = err.getvalue()
    return ids


def test_run_set_is_stored_like_qa_toml_and_printed(world, runs) -> None:  # noqa: ANN001
    store = Store(world["db"])  # type: ignore[arg-type]
    assert run_settings(store, runs["x2"]) == {"factor": 2}  # the run's settings, as qa.toml's would be
    assert run_settings(store, runs["x4"]) == {"factor": 4}
    frame = runs_frame(store, "bicubic").set_index("run_id")
    assert frame.loc[runs["x2"], "scale"] == 2 and frame.loc[runs["x4"], "scale"] == 4
    assert "bicubic: settings factor=2 (--set)" in runs["x2_err"]  # the effective settings, on stderr
    assert "bicubic: settings factor=4 (default)" in runs["x4_err"]
    assert "\n" not in runs["x2"] and runs["x2"].startswith("bicubic-")  # stdout: the run id alone


def test_run_set_rejects_unknown_keys_and_bad_values(world, capsys) -> None:  # noqa: ANN001
    rc, _, err = _run(capsys, "run", "--decoder", "bicubic", "--set", "facter=2", *world["common"])
    assert rc == 2 and "did you mean" in err and "factor" in err
    rc, _, err = _run(capsys, "run", "--decoder", "bicubic", "--set", "factor", *world["common"])
    assert rc == 2 and "expected KEY=VALUE" in err


def test_decoders_prints_effective_settings(capsys) -> None:  # noqa: ANN001
    rc, out, _ = _run(capsys, "decoders")
    assert rc == 0 and "effective settings" in out
    assert "  bicubic: factor=4 (default)" in out and "  pid: degrade_sigma=0.0 (default), steps=4 (default)" in out


def test_diff_compares_two_runs_and_stores_nothing(world, runs, capsys) -> None:  # noqa: ANN001
    store = Store(world["db"])  # type: ignore[arg-type]
    before = store.query("select count(*) from gates")[0][0]
    rc, out, _ = _run(capsys, "diff", runs["x2"], runs["x4"], "--db", str(world["db"]), "--format", "json")
    assert rc == 0
    got = {d["metric"]: d for d in json.loads(out)["metrics"]}
    a, b = (results_frame(store, runs[r]).query("metric == 'psnr'").groupby("case_id")["value"].mean()
            for r in ("x2", "x4"))
    # x4 from a 4x smaller input loses more than x2: B (x4) is worse by the difference of the two runs' PSNRs of
    # their mean squared error (PSNR is averaged in noise power, qa.averaging; computed here from the rows)
    power = {r: (10 ** (-results_frame(store, runs[r]).query("metric == 'psnr'")["value"] / 10)).mean()
             for r in ("x2", "x4")}
    expected = 10 * math.log10(power["x4"] / power["x2"])
    assert got["psnr"]["worse_by"] == pytest.approx(expected, rel=1e-9) and got["psnr"]["worse_by"] > 0
    lo, hi = got["psnr"]["worse_by_ci"]
    assert lo <= got["psnr"]["worse_by"] <= hi and got["psnr"]["n"] == 6
    assert got["psnr"]["n_worse"] == int(((a - b) > 0).sum())
    assert store.query("select count(*) from gates")[0][0] == before  # nothing stored
    rc, out, _ = _run(capsys, "diff", runs["x2"], "latest", "--decoder", "bicubic", "--db", str(world["db"]))
    assert rc == 0 and "worse by" in out and "psnr" in out and "nothing is stored" in out


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_writes_every_row_with_provenance(world, runs, capsys, tmp_path: Path, suffix: str) -> None:  # noqa: ANN001
    out_file = tmp_path / f"run{suffix}"
    rc, out, _ = _run(capsys, "export", "--run", "latest", "--decoder", "bicubic", "--out", str(out_file),
                      "--db", str(world["db"]))
    assert rc == 0 and "wrote" in out
    df = pd.read_parquet(out_file) if suffix == ".parquet" else pd.read_csv(out_file)
    expected = results_frame(Store(world["db"]), runs["x2"])  # type: ignore[arg-type]
    assert len(df) == len(expected) == 6 * (1 + 2 * 2)  # per tile: the case row, psnr and ssim of 2 seeds
    assert set(df["run_id"]) == {runs["x2"]} and set(df["decoder"]) == {"bicubic"}
    assert "weights_sha256" in df and df["reference_set_sha256"].notna().all() and df["qa_version"].notna().all()
    psnr = df[df.metric == "psnr"].sort_values("case_id")["value"].to_numpy()
    assert psnr == pytest.approx(expected[expected.metric == "psnr"].sort_values("case_id")["value"].to_numpy())
    rc, _, err = _run(capsys, "export", "--run", runs["x2"], "--out", str(tmp_path / "x.xlsx"), "--db",
                      str(world["db"]))
    assert rc == 2 and ".parquet or .csv" in err


def test_version_names_the_commit(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("qa ") and ("git commit " in text or "not a git checkout" in text)


def test_every_subcommand_help_has_a_description() -> None:
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    for name, sub in subs.choices.items():  # type: ignore[union-attr]
        assert sub.description, f"qa {name} --help has no description"


def test_demo_says_what_to_do_next_and_never_pass_alone(world, capsys) -> None:  # noqa: ANN001
    from qa.demo import run_demo

    out_html = Path(str(world["root"])) / "demo.html"
    assert run_demo(db=Path(str(world["root"])) / "demo.duckdb", out=out_html, decoders=["bicubic"],
                    reference_set=str(world["refset"])) == 0
    text = capsys.readouterr().out
    gate = next(line for line in text.splitlines() if line.startswith("gate bicubic: "))
    assert gate.startswith("gate bicubic: PASS against no approved baseline"), gate
    steps = text[text.index("next steps"):]
    for expected in ("qa signoff keygen", "allowed_signers", "QA_TRUSTED_KEYS", "--baseline none",
                     "qa signoff --run", "--decision approve", str(out_html), "first screen"):
        assert expected in steps, expected


def test_readme_read_api_example_runs(world, runs, capsys) -> None:  # noqa: ANN001
    """README's "Reading results" example, run as written on this store (the decoder and path swapped in)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Reading results"):]
    code = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 9)]
    code = code.replace('"reports/qa.duckdb"', repr(str(world["db"]))).replace('"pid"', '"bicubic"')
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the documented example itself
    out = capsys.readouterr().out
    assert "psnr" in out and "ssim" in out and "ci_low" in out


def test_latest_is_taken_where_a_run_id_is(world, runs, capsys) -> None:  # noqa: ANN001
    rc, out, _ = _run(capsys, "signoff", "list", "--run", "latest", "--decoder", "bicubic", "--db", str(world["db"]))
    assert rc == 0 and out.strip() == f"no sign-offs of run {runs['x2']}"
