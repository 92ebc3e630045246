"""Issue 25, reproduction 9: config mistakes are refused in one line with exit 2 (a typo with did-you-mean, a
wrong type, an impossible value), never run with a default, a traceback, or every row an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.cli.main import main as qa_main
from tests.helpers import make_refset


@pytest.mark.parametrize(("setting", "said"), [
    ("facter = 2", "unknown setting 'facter' (family 'bicubic')\n  hint: did you mean 'factor'?"),
    ('factor = "two"', "factor must be a whole number, got 'two'"),
    ("factor = 0", "factor must be >= 1, got 0"),
    ("factor = 2.5", "factor must be a whole number, got 2.5"),
])
def test_bad_decoder_settings_are_refused_in_one_line(setting: str, said: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qa.toml").write_text(f'[decoders.b2]\nfamily = "bicubic"\n{setting}\n')
    refset = make_refset(tmp_path / "set", n=2)
    rc = qa_main(["run", "--decoder", "b2", "--reference-set", str(refset), "--db", str(tmp_path / "q.duckdb"),
                  "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and said in err and str(tmp_path / "qa.toml") in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "q.duckdb").exists() or "b2-" not in (tmp_path / "q.duckdb").read_bytes().decode("latin-1")
    assert qa_main(["decoders"]) == 0  # the listing names it unavailable with the same reason, never "x0"
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("b2 "))
    assert "unavailable" in line and said.split("\n")[0] in line


def test_good_settings_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qa.toml").write_text('[decoders.b2]\nfamily = "bicubic"\nfactor = 2\n')
    assert qa_main(["decoders"]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("b2 "))
    assert "x2" in line and "available" in line and "unavailable" not in line
