"""The manifest loader refuses bad rows by name and keeps the others usable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from qa.errors import ManifestError
from qa.refset.manifest import COLUMNS, load_reference_set, resolve_reference_set
from tests.refset.bad_images import write_rgb_png


def _write(folder: Path, rows: list[str]) -> None:
    (folder / "manifest.csv").write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def set_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sets" / "mine"
    root.mkdir(parents=True)
    write_rgb_png(root / "a.png", seed=1)
    (root / "sub").mkdir()
    write_rgb_png(root / "sub" / "b.png", seed=2)
    return root


def test_path_escaping_the_folder_is_refused_by_name_and_the_rest_loads(set_dir: Path) -> None:
    _write(set_dir, [
        f"a,a.png,An a.,cc0,here,{_sha(set_dir / 'a.png')}",
        "evil,../../etc/passwd,Secrets.,,,",
        f"b,sub/b.png,A b.,cc0,here,{_sha(set_dir / 'sub' / 'b.png')}",
    ])
    refset = load_reference_set(set_dir)
    assert [i.id for i in refset.good] == ["a", "b"]
    [bad] = refset.bad
    assert bad.id == "evil"
    assert "../../etc/passwd" in bad.problem and "escapes" in bad.problem
    assert "manifest.csv:3" in bad.problem
    assert bad.path.name == "__refused__"  # never the target of the escape


def test_absolute_path_and_symlink_out_are_refused(set_dir: Path, tmp_path: Path) -> None:
    outside = write_rgb_png(tmp_path / "outside.png")
    os.symlink(outside, set_dir / "link.png")
    _write(set_dir, [
        f"a,a.png,An a.,,,{_sha(set_dir / 'a.png')}",
        f"abs,{outside},Absolute.,,,",
        "link,link.png,A link.,,,",
    ])
    refset = load_reference_set(set_dir)
    problems = {i.id: i.problem for i in refset.bad}
    assert set(problems) == {"abs", "link"}
    assert str(outside) in problems["abs"] and "escapes" in problems["abs"]
    assert "link.png" in problems["link"] and "escapes" in problems["link"]


def test_missing_file_hash_mismatch_duplicate_id_and_nul_byte(set_dir: Path) -> None:
    _write(set_dir, [
        f"a,a.png,An a.,,,{_sha(set_dir / 'a.png')}",
        "gone,gone.png,Missing.,,,",
        f"wrong,sub/b.png,Wrong hash.,,,{'0' * 64}",
        "a,sub/b.png,Duplicate id.,,,",
        "nul,bad\x00name.png,Nul byte.,,,",
    ])
    refset = load_reference_set(set_dir)
    problems = [i.problem for i in refset.bad]
    assert len(problems) == 4 and [i.id for i in refset.good] == ["a"]
    assert "gone.png" in problems[0] and "not found" in problems[0]
    assert "sub/b.png" in problems[1] and "sha256" in problems[1]
    assert "duplicate id 'a'" in problems[2]
    assert "not a usable path" in problems[3]


def test_hash_verification_can_be_skipped(set_dir: Path) -> None:
    _write(set_dir, [f"a,a.png,An a.,,,{'f' * 64}"])
    assert load_reference_set(set_dir).bad
    assert not load_reference_set(set_dir, verify_hashes=False).bad


def test_unreadable_manifests_raise(set_dir: Path) -> None:
    (set_dir / "manifest.csv").write_text("id,caption\nx,y\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="missing column"):
        load_reference_set(set_dir)
    _write(set_dir, [])
    with pytest.raises(ManifestError, match="no items"):
        load_reference_set(set_dir)


def test_unknown_set_name_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        resolve_reference_set(tmp_path / "nope")
    assert "qa refset build" in str(info.value)


def test_a_spreadsheets_csv_loads_and_a_latin1_one_says_how_to_save_it(set_dir: Path) -> None:
    """Audit 2026-12-07: a manifest saved as a spreadsheet's "CSV UTF-8" starts with a byte-order mark, and one
    with a header "ID,File,Caption" was refused as "missing column(s) id". Both load as the plain file does (the
    same content hash); a Latin-1 file says to save it as UTF-8."""
    sha = _sha(set_dir / "a.png")
    _write(set_dir, [f"a,a.png,Café au lait.,,,{sha}"])
    plain = load_reference_set(set_dir)
    text = (set_dir / "manifest.csv").read_text(encoding="utf-8")
    (set_dir / "manifest.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("id,file,caption", "ID, File ,Caption")
                                           .encode("utf-8"))
    loaded = load_reference_set(set_dir)
    assert not loaded.bad and loaded.sha256 == plain.sha256 and loaded.items[0].caption == "Café au lait."
    (set_dir / "manifest.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8") as err:
        load_reference_set(set_dir)
    assert "CSV UTF-8" in str(err.value)
