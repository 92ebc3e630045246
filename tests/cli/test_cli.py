"""The command line explains itself and reports problems with a next step."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.cli.main import build_parser, main

SUBCOMMANDS = ["demo", "run", "score", "gate", "report", "signoff", "status", "decoders", "metrics", "weights", "refset"]


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert f"qa {name}" in text and "options:" in text


def test_unknown_decoder_exit_2_with_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--decoder", "bicubik", "--db", str(tmp_path / "x.duckdb"), "--no-progress"])
    assert code == 2
    assert "did you mean 'bicubic'" in capsys.readouterr().err


def test_missing_reference_set_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--decoder", "bicubic", "--reference-set", str(tmp_path / "nope"),
                 "--db", str(tmp_path / "x.duckdb"), "--no-progress"])
    assert code == 2
    assert "qa refset build" in capsys.readouterr().err


def test_missing_database_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qa.errors import StoreError
    from qa.store import Store

    with pytest.raises(StoreError, match="qa run"):
        with Store(tmp_path / "absent.duckdb").connect(read_only=True):
            pass


def test_parser_builds() -> None:
    assert build_parser().prog == "qa"
