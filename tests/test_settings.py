"""qa.settings: one frozen object from [tool.qa], qa.toml and the environment; suites and reference sets found
from any working directory; a broken third-party package is a clear error."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.gate.policy import default_policy_path
from qa.refset.manifest import resolve_reference_set
from qa.settings import SOURCE_ROOT, get_settings, resolve_settings

ROOT = Path(__file__).resolve().parents[1]


def test_settings_come_from_files_and_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qa.decoders.a]\nfamily = "bicubic"\n[tool.qa.decoders.b]\n'
                                             'family = "bicubic"\n')
    (tmp_path / "qa.toml").write_text('[decoders.b]\nfamily = "vae"\npath = "w"\n')
    s = resolve_settings(tmp_path, {"QA_DB": "/x/y.duckdb", "QA_WEIGHTS_DIR": "/w", "QA_RAY_WORKERS": "3"})
    assert (s.db, s.weights_dir, s.ray_workers) == (Path("/x/y.duckdb"), Path("/w"), 3)
    assert s.decoders["a"].family == "bicubic" and s.decoders["b"].family == "vae"  # qa.toml wins
    assert s.decoders["b"].settings["path"] == str((tmp_path / "w").resolve())  # relative to the file
    assert s.suites_dirs[0] == tmp_path / "suites" and s.suites_dirs[-1] == SOURCE_ROOT / "suites"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.db = Path("other")  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.decoders["c"] = s.decoders["a"]  # type: ignore[index]
    with pytest.raises(QAError, match="QA_RAY_WORKERS"):
        _ = resolve_settings(tmp_path, {"QA_RAY_WORKERS": "many"}).ray_workers
    empty = resolve_settings(tmp_path / "nothing", {})
    assert empty.db == Path("reports/qa.duckdb") and empty.ray_workers is None and not empty.decoders


def test_get_settings_follows_a_change_of_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_DB", str(tmp_path / "one.duckdb"))
    first = get_settings()
    assert first is get_settings()  # resolved once
    assert first.db == tmp_path / "one.duckdb"
    monkeypatch.setenv("QA_DB", str(tmp_path / "two.duckdb"))
    assert get_settings().db == tmp_path / "two.duckdb"
    (tmp_path / "qa.toml").write_text('[decoders.mine]\nfamily = "bicubic"\n')
    assert "mine" in get_settings().decoders


def test_suites_and_reference_sets_are_found_from_another_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no suites/ or reference_sets/ here: the source tree's are used
    assert default_policy_path("upscale") == SOURCE_ROOT / "suites" / "policy_upscale.toml"
    assert resolve_reference_set("default") == SOURCE_ROOT / "reference_sets" / "default"
    assert SOURCE_ROOT == ROOT


def test_a_broken_third_party_package_is_a_clear_error(tmp_path: Path) -> None:
    """Not "report not written": the command stops before running anything and names the package."""
    (tmp_path / "plotly").mkdir()
    (tmp_path / "plotly" / "__init__.py").write_text('raise ImportError("broken on purpose", name="plotly")\n')
    out = subprocess.run([sys.executable, "-c", "import sys; from qa.cli.main import main; sys.exit(main())",
                          "report", "--db", str(tmp_path / "qa.duckdb"), "--out", str(tmp_path / "r.html")],
                         capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert "the package plotly cannot be imported" in out.stderr and "broken on purpose" in out.stderr
    assert not (tmp_path / "r.html").exists()
