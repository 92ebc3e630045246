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


def test_table_pins_hashes() -> None:
    for spec in W.KNOWN.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0 and spec.sha256 == spec.sha256.lower()
        assert spec.url.startswith("https://") and spec.licence and spec.metrics
    # torch hub's 8-digit prefix in the file name is part of the full pin, never the pin itself
    for name in ("inception-fid", "alexnet", "vgg16"):
        spec = W.KNOWN[name]
        assert spec.sha256.startswith(spec.filename.rsplit("-", 1)[1].split(".")[0])


def test_a_file_sharing_only_torch_hubs_prefix_is_refused(home: Path) -> None:
    """Audit F4: torchvision names its files by the first 8 hex digits of their sha256; a forged AlexNet whose
    digest shares those 32 bits (minutes of brute force) was imported as official and set lpips_alex to 0."""
    spec = W.KNOWN["alexnet"]
    forged = spec.sha256[:8] + "0" * 56
    assert not spec.matches(forged) and spec.matches(spec.sha256) and spec.matches(spec.sha256.upper())
    assert not any(s.matches(forged) for s in W.KNOWN.values())


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


def test_import_and_discovery_refuse_a_forged_prefix_match(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through `qa weights import` and the torch hub cache: the forged digest is computed for the file
    (brute-forcing 32 bits here would take minutes), and both refuse it."""
    import qa.weights.store as store

    forged = W.KNOWN["alexnet"].sha256[:8] + "f" * 56
    monkeypatch.setattr(store, "sha256_file", lambda _p: forged)
    monkeypatch.setattr(store, "cached_sha256", lambda _p: forged)
    fake = home / "alexnet-owt-7be5be79.pth"
    fake.write_bytes(b"zeros where AlexNet's filters should be")
    with pytest.raises(QAError, match="refused"):
        W.import_file(fake)
    hub = home / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copyfile(fake, hub / fake.name)
    assert W.locate("alexnet").status == "mismatch"
