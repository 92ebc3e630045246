"""Issue 25, reproduction 11: a 10 KB PNG declaring 9400 x 9400 pixels is refused at `qa refset build` and becomes an
error row at run time (read from the header, never decoded: no MemoryError traceback); the limit (64 Mpx by
default) is the ``max_image_pixels`` setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from qa.cli.main import main as qa_main
from qa.engine.run import RunConfig, RunEngine
from qa.hashing import sha256_file
from qa.imageio import pixel_limit
from qa.settings import DEFAULT_MAX_PIXELS
from qa.store import Store
from tests.helpers import make_refset


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("L", (9400, 9400)).save(path, optimize=True)
    assert path.stat().st_size < 200_000  # tiny on disk, 88 Mpx declared
    return path


def test_huge_image_is_refused_at_refset_build(huge: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    folder = tmp_path / "set"
    make_refset(folder, n=2)
    (folder / "manifest.csv").unlink()
    (folder / "huge.png").write_bytes(huge.read_bytes())
    assert qa_main(["refset", "build", str(folder)]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "huge.png" in text and "9400x9400" in text and f"above the limit of {DEFAULT_MAX_PIXELS}" in text
    assert "Traceback" not in text and "MemoryError" not in text


def test_huge_image_is_an_error_row_at_run_time(huge: Path, tmp_path: Path) -> None:
    folder = tmp_path / "set"
    make_refset(folder, n=3)
    (folder / "huge.png").write_bytes(huge.read_bytes())
    make_refset(folder, n=3, extra=[{"id": "huge", "file": "huge.png", "caption": "huge", "licence": "test",
                                     "source": "test", "sha256": sha256_file(folder / "huge.png")}])
    store = Store(tmp_path / "qa.duckdb")
    run = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(folder), metrics=["psnr"],
                                           progress=False))
    status, = store.query("select status from runs where run_id = ?", [run])[0]
    assert status == "finished"
    rows = store.query("select status, detail from results where run_id = ? and case_id = 'huge' and metric = 'case'",
                       [run])
    assert rows and rows[0][0] == "error" and "9400x9400" in rows[0][1] and "max_image_pixels" in rows[0][1]
    ok = store.query("select count(distinct case_id) from results where run_id = ? and metric = 'psnr' "
                     "and status = 'ok'", [run])
    assert ok[0][0] == 3  # the other cases were scored


def test_the_pixel_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert pixel_limit() == DEFAULT_MAX_PIXELS == 64_000_000
    (tmp_path / "qa.toml").write_text("max_image_pixels = 1000\n")
    assert pixel_limit() == 1000
    folder = make_refset(tmp_path / "set", n=2)
    (folder / "manifest.csv").unlink()
    assert qa_main(["refset", "build", str(folder)]) == 2  # 64 x 64 = 4096 > 1000
    out = capsys.readouterr()
    assert "above the limit of 1000" in out.out + out.err
    for bad, why in (('max_image_pixels = "many"', "whole number"), ("max_image_pixels = 0", "whole number"),
                     ("max_image_pixel = 5", "did you mean 'max_image_pixels'")):
        (tmp_path / "qa.toml").write_text(bad + "\n")
        assert qa_main(["decoders"]) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
