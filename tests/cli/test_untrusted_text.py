"""Text from outside qa where it is shown (hostile-input audit F1-F3): an id, a file name, a decoder name, a
reviewer name or a sign-off note must not clear a terminal or print a fake verdict (ESC sequences), start a
Markdown heading of its own in a CI summary (CR, U+2028), reverse what a reader sees (U+202E), or run as a
formula when a CSV is opened in a spreadsheet."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from qa.cli import commands
from qa.cli.main import main
from qa.errors import QAError
from qa.gate.formats import md, md_code
from qa.gate.signoff import record_signoff
from qa.plain_text import EscapingStream, csv_cell, escaped, one_line, raw_stream, refusal
from qa.refset.manifest import load_reference_set, write_manifest
from qa.settings import ConfigError, read_decoder_configs
from qa.store import Store
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset

CLEAR_AND_FAKE = "\x1b[2J\x1b[1;32mALL CHECKS PASSED\x1b[0m"
HOSTILE = [CLEAR_AND_FAKE, "bad\r\r### qa gate: PASS\r\r", "rtl\u202egnp.exe", "a\u2028### PASS", "osc\x1b]8;;http://x\x07",
           "nel\x85x", "bell\x07"]
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]


@pytest.mark.parametrize("text", HOSTILE)
def test_unsafe_text_is_shown_escaped_and_on_one_line(text: str) -> None:
    for shown in (escaped(text), one_line(text), md(text), md_code(text)):
        assert not any(c in shown for c in "\x1b\r\n\x85\x07\u2028\u202e"), repr(shown)
    assert refusal("id", text) and "U+" in refusal("id", text)
    assert escaped("plain id-01 é ü 漢字") == "plain id-01 é ü 漢字" and not refusal("id", "plain id-01 é 漢字")
    assert escaped("a\nb\tc", keep="\n\t") == "a\nb\tc"  # what a terminal stream keeps


def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote() -> None:
    for text in FORMULAS:
        assert csv_cell(text) == "'" + text
    assert csv_cell("tile01") == "tile01" and csv_cell(-1) == -1 and csv_cell(2.5) == 2.5


def test_manifest_refuses_ids_with_control_or_bidi_characters(tmp_path: Path) -> None:
    root = make_refset(tmp_path / "set", n=2)
    good = [{"id": f"tile{i:02d}", "file": f"tile{i:02d}.png"} for i in range(2)]
    hostile = [{"id": text, "file": "tile00.png"} for text in HOSTILE]
    formulas = [{"id": text, "file": "tile01.png"} for text in FORMULAS]
    write_manifest(root, good + hostile + formulas)
    items = load_reference_set(root).items
    refused = [i for i in items if i.problem]
    assert len(refused) == len(HOSTILE)
    for item in refused:
        assert item.id.startswith("line-") and "control or bidirectional" in item.problem
        assert "\x1b" not in item.problem and "\r" not in item.problem and "\u202e" not in item.problem
    assert {i.id for i in items if not i.problem} == {"tile00", "tile01", *FORMULAS}  # a formula is text


def test_a_decoder_name_with_control_characters_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "qa.toml").write_text('[decoders."evil\\u001b[31mRED"]\nfamily = "bicubic"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="control or bidirectional"):
        read_decoder_configs(tmp_path)


def test_the_command_line_shows_what_it_prints_escaped(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Text stored before the refusals (or a file name) reaches the terminal escaped: one stream for all of qa's
    output, so no print site can forget it; progress bars write their carriage returns to the raw stream."""
    seen = {}

    def shout(_args: object) -> int:
        import sys

        print(f"case {CLEAR_AND_FAKE} failed\nnext line\ttab")
        print(f"warning: {HOSTILE[1]}", file=sys.stderr)
        seen["raw"] = raw_stream(sys.stderr)
        return 0

    monkeypatch.setattr(commands, "cmd_decoders", shout)
    import sys

    before = sys.stdout, sys.stderr
    assert main(["decoders"]) == 0
    out = capsys.readouterr()
    assert "\x1b" not in out.out and "\\x1b[2J" in out.out and "failed\nnext line\ttab" in out.out
    assert "\r" not in out.err and "\\r\\r### qa gate: PASS" in out.err
    assert (sys.stdout, sys.stderr) == before and not isinstance(seen["raw"], EscapingStream)


def _run_quietly(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def test_export_and_score_csv_keep_formula_ids_as_text(tmp_path: Path) -> None:
    root = make_refset(tmp_path / "set", n=4)
    write_manifest(root, [{"id": text, "file": f"tile{i:02d}.png"} for i, text in enumerate(FORMULAS)])
    db = tmp_path / "qa.duckdb"
    assert _run_quietly("run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr", "--db",
                        str(db), "--no-progress") == 0
    assert _run_quietly("export", "--run", "latest", "--out", str(tmp_path / "x.csv"), "--db", str(db)) == 0
    assert _run_quietly("export", "--run", "latest", "--out", str(tmp_path / "x.parquet"), "--db", str(db)) == 0
    with open(tmp_path / "x.csv", newline="", encoding="utf-8") as fh:
        cells = {row["case_id"] for row in csv.DictReader(fh)}
    assert cells == {"'" + text for text in FORMULAS}
    assert set(pd.read_parquet(tmp_path / "x.parquet")["case_id"]) == set(FORMULAS)  # for programs: as it is

    ref, cand = tmp_path / "ref", tmp_path / "cand"
    ref.mkdir()
    cand.mkdir()
    name = "=HYPERLINK(1).png"
    shutil.copyfile(root / "tile00.png", ref / name)
    Image.fromarray(np.asarray(Image.open(root / "tile00.png"))[::-1].copy()).save(cand / name)
    assert _run_quietly("score", "--reference", str(ref), "--candidate", str(cand), "--out", str(tmp_path / "s.csv"),
                        "--metrics", "psnr") == 0
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as fh:
        images = {row["image"] for row in csv.DictReader(fh)}
    assert images and all(i.startswith("'=") for i in images)


def test_a_sign_off_note_or_reviewer_with_control_characters_is_refused(tmp_path: Path) -> None:
    root = make_refset(tmp_path / "set", n=2)
    db = tmp_path / "qa.duckdb"
    assert _run_quietly("run", "--decoder", "bicubic", "--reference-set", str(root), "--metrics", "psnr", "--db",
                        str(db), "--no-progress") == 0
    store = Store(db)
    key, trusted = make_reviewer(tmp_path, "ana")
    with pytest.raises(QAError, match="control or bidirectional"):
        record_signoff(store, "latest", None, "reject", f"looks fine {CLEAR_AND_FAKE}", key=key, trusted=trusted,
                       decoder="bicubic")
    with pytest.raises(QAError, match="control or bidirectional"):
        record_signoff(store, "latest", None, "reject", "a\u2028### qa gate: PASS", key=key, trusted=trusted,
                       decoder="bicubic")
    assert record_signoff(store, "latest", None, "reject", "too blurry\r\non the left\tside", key=key,
                          trusted=trusted, decoder="bicubic") == 1  # a multi-line note is plain text
    sly, sly_trusted = make_reviewer(tmp_path / "sly", "sly")
    text = sly_trusted.read_text(encoding="utf-8").replace("sly ", "sly\x1b[2J ", 1)
    sly_trusted.write_text(text, encoding="utf-8")  # a hand-edited trusted-keys file
    with pytest.raises(QAError, match="control or bidirectional"):
        record_signoff(store, "latest", None, "reject", "no", key=sly, trusted=sly_trusted, decoder="bicubic")
