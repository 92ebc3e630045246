"""Wrong usage is one line on stderr, `qa CMD: error: ...` with a next step, and exit 2, before anything is written
(audit D6, D8, D9, D11): an unknown `--metrics` name in `qa diff` (and `qa run`), a wrong `--out` suffix in
`qa report` and `qa baseline export`, a decoder without runs in `qa report --decoder` and `qa status`, an unknown
weights name or a missing file in `qa weights`. A weights file refused by its hash stays exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.cli.main import main
from tests.helpers import make_refset


def _qa(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two bicubic runs (x4, x2) with psnr on a 2-tile set."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("usage")
    refset = make_refset(root / "set", n=2)
    db = str(root / "qa.duckdb")
    ids = {"db": db, "root": str(root)}
    for key, extra in (("a", []), ("b", ["--set", "factor=2"])):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["run", "--decoder", "bicubic", "--reference-set", str(refset), "--metrics", "psnr", *extra,
                         "--db", db, "--no-progress"]) == 0
        ids[key] = out.getvalue().strip()
    return ids


def test_diff_unknown_metrics_exit_2_naming_each(store: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _qa(capsys, "diff", store["a"], store["b"], "--metrics", "nosuch,psnr,ssmi", "--db", store["db"])
    assert rc == 2 and out == ""
    assert err.startswith("qa diff: error: --metrics: unknown metrics 'nosuch', 'ssmi'")
    assert "did you mean 'ssim'" in err and "`qa metrics`" in err
    rc, out, _ = _qa(capsys, "diff", store["a"], store["b"], "--metrics", "psnr", "--db", store["db"])
    assert rc == 0 and "psnr" in out
    rc, out, _ = _qa(capsys, "diff", store["a"], store["b"], "--metrics", "lpips", "--db", store["db"])
    assert rc == 0 and "lpips_alex" in out  # an alias is a registered name: read as its metric


def test_run_unknown_metrics_use_the_same_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _qa(capsys, "run", "--decoder", "bicubic", "--metrics", "nosuch,foo", "--db",
                     str(tmp_path / "x.duckdb"), "--no-progress")
    assert rc == 2 and "unknown metrics 'nosuch', 'foo'" in err and "`qa metrics`" in err


def test_report_and_baseline_export_refuse_wrong_suffixes(store: dict[str, str], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _qa(capsys, "report", "--out", str(tmp_path / "r.pdf"), "--db", store["db"])
    assert rc == 2 and out == "" and "qa report: error: --out" in err and "must end in .html" in err
    assert not (tmp_path / "r.pdf").exists()
    rc, out, err = _qa(capsys, "baseline", "export", "--decoder", "bicubic", "--out", str(tmp_path / "b.txt"),
                       "--db", store["db"])
    assert rc == 2 and "qa baseline: error: --out" in err and "must end in .parquet" in err
    assert not (tmp_path / "b.txt").exists()


def test_a_decoder_without_runs_is_an_error_naming_those_with_runs(store: dict[str, str], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "r.html"
    rc, out, err = _qa(capsys, "report", "--decoder", "nosuch", "--out", str(out_file), "--db", store["db"])
    assert rc == 2 and out == "" and not out_file.exists()
    assert "qa report: error: no run of decoder 'nosuch'" in err and "decoders with runs there: bicubic" in err
    rc, out, err = _qa(capsys, "report", "--decoder", "bicubik", "--decoder", "bicubic", "--out", str(out_file),
                       "--db", store["db"])
    assert rc == 2 and "'bicubik'" in err and "did you mean 'bicubic'" in err
    for fmt in ("text", "json", "markdown"):
        rc, out, err = _qa(capsys, "status", "nosuch", "--format", fmt, "--db", store["db"])
        assert rc == 2 and out == "" and "qa status: error: no run of decoder 'nosuch'" in err and "bicubic" in err
    rc, out, _ = _qa(capsys, "status", "bicubic", "--db", store["db"])
    assert rc == 0 and store["b"] in out


def test_status_and_report_help_state_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("status", "report"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "no run in the store" in " ".join(capsys.readouterr().out.split())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in (("HOME", ""), ("QA_WEIGHTS_DIR", "qa-weights"), ("TORCH_HOME", "torch"), ("HF_HOME", "hf")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


def test_weights_usage_errors_exit_2_on_stderr(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _qa(capsys, "weights", "fetch", "nosuch")
    assert rc == 2 and out == "" and err.startswith("qa weights: error: unknown weights 'nosuch'")
    assert "qa weights list" in err
    rc, out, err = _qa(capsys, "weights", "import", str(home / "absent.pth"))
    assert rc == 2 and out == "" and err.startswith("qa weights: error: ") and "no such file" in err
    fake = home / "alex.pth"
    fake.write_bytes(b"not the official file")
    rc, out, err = _qa(capsys, "weights", "import", str(fake))  # refused by its hash: a failure, not wrong usage
    assert rc == 1 and out == "" and err.startswith("qa weights: error: ") and "refused" in err
    assert not (home / "qa-weights" / "alex.pth").exists()


def test_qa_run_says_when_cases_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Audit 2026-12-07: `qa run` printed only the run id when 13 of 30 cases failed; the reasons were in the
    store alone. Now one stderr line says how many, the first reason and where the rest are (exit 0: the run
    finished, and the gate fails on the failed cases)."""
    from qa.cli.main import main as qa_main
    from tests.gate.helpers import register

    register()
    refset = make_refset(tmp_path / "set", n=3)
    rc = qa_main(["run", "--decoder", "always-raising", "--reference-set", str(refset), "--db",
                  str(tmp_path / "qa.duckdb"), "--no-progress", "--metrics", "psnr"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "qa run: warning: 3 of 3 cases of always-raising-" in err and "planted failure decoding" in err
