"""The weights store: sha256 checks, import refusal, discovery in other tools' caches, the explicit fetch."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

import qa.weights as W
from qa.errors import QAError, WeightsMissingError

lpips = pytest.importorskip("lpips")
ALEX_HEADS = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("QA_WEIGHTS_DIR", str(tmp_path / "qa-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def test_table_pins_hashes() -> None:
    for spec in W.KNOWN.values():
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert spec.sha256 is not None or len(spec.sha256_prefix) == 8
        assert spec.url.startswith("https://") and spec.licence and spec.metrics
    assert W.KNOWN["inception-fid"].sha256.startswith("6726825d")  # torch hub's prefix in the file name


def test_import_checks_sha_and_refuses_mismatch(home: Path) -> None:
    name, dest = W.import_file(ALEX_HEADS)
    assert name == "lpips-alex-v0.1" and dest.parent == home / "qa-weights" and dest.is_file()
    fake = home / "pt_inception-2015-12-05-6726825d.pth"
    fake.write_bytes(b"not the inception weights")
    with pytest.raises(QAError, match="refused") as exc:
        W.import_file(fake)
    assert "inception-fid" in str(exc.value)
    out = io.StringIO()
    assert W.cli_import(str(fake), out=out) == 1 and "refused" in out.getvalue()


def test_discovery_in_torch_hub_cache_and_mismatch_reported(home: Path) -> None:
    assert W.locate("inception-fid").status == "absent"
    hub = home / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"corrupt")
    loc = W.locate("inception-fid")
    assert loc.status == "mismatch" and "hash differs" in loc.detail
    assert W.cli_verify(out=io.StringIO()) == 1
    with pytest.raises(WeightsMissingError, match="qa weights fetch inception-fid"):
        W.require("inception-fid")
    # a real (known) file in the torch hub folder is found without copying it anywhere
    shutil.copyfile(ALEX_HEADS, hub / "alex.pth")
    assert W.locate("lpips-alex-v0.1").path == hub / "alex.pth"


def test_fetch_says_network_and_verifies(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    payload = {"data": ALEX_HEADS.read_bytes()}
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=0: io.BytesIO(payload["data"]))
    out = io.StringIO()
    assert W.cli_fetch("lpips-alex-v0.1", out=out) == 0
    assert "NETWORK ACCESS" in out.getvalue() and (home / "qa-weights" / "alex.pth").is_file()
    payload["data"] = b"tampered"
    out = io.StringIO()
    assert W.cli_fetch("lpips-vgg-v0.1", out=out) == 1 and "expected" in out.getvalue()
    assert not (home / "qa-weights" / "vgg.pth").exists()
    assert not list((home / "qa-weights").glob("*.part"))
