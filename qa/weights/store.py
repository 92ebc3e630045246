"""The weights store: a folder of verified official files, discovery in other tools' caches, explicit fetch.

Nothing here downloads implicitly. :func:`fetch` is the only function that touches the network, and it says so
before it does. Every file is identified by its sha256; a file whose hash does not match the official one is
refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from qa.errors import QAError, WeightsMissingError
from qa.hashing import sha256_file
from qa.settings import WEIGHTS_ENV, get_settings
from qa.weights.table import KNOWN, WeightsSpec


def weights_dir() -> Path:
    """$QA_WEIGHTS_DIR, else ~/.cache/qa/weights (not created until something is written)."""
    return get_settings().weights_dir


_VERIFIED: dict[tuple[str, int, int], str] = {}


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered per (path, size, mtime) for this process (big files hash once)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key]


def spec(name: str) -> WeightsSpec:
    """The table entry ``name``; :class:`QAError` listing the known names otherwise."""
    if name not in KNOWN:
        raise QAError(f"unknown weights {name!r}", f"known: {', '.join(sorted(KNOWN))} (see `qa weights list`)")
    return KNOWN[name]


def _cache_candidates(s: WeightsSpec) -> Iterator[Path]:
    """Where other tools keep this file (never downloads; only looks)."""
    names = (s.filename, *s.aliases)
    home = Path.home()
    torch_home = Path(os.environ.get("TORCH_HOME", home / ".cache" / "torch")).expanduser()
    for folder in (torch_home / "hub" / "checkpoints", home / ".cache" / "clip", home / ".cache" / "open_clip"):
        for n in names:
            yield folder / n
    if s.name.startswith("lpips-"):
        # the lpips package's folder, found without importing it (importing lpips imports torchvision: ~2.5 s)
        found = importlib.util.find_spec("lpips")
        if found is not None and found.origin:
            yield Path(found.origin).parent / "weights" / "v0.1" / s.filename
    hf = Path(os.environ.get("HF_HOME", home / ".cache" / "huggingface")).expanduser() / "hub"
    if s.sha256 is not None and hf.is_dir():  # LFS blobs are stored under their sha256
        yield from hf.glob(f"*/blobs/{s.sha256}")


@dataclass
class Located:
    """Where a weights file was found and whether its hash matched."""

    name: str
    path: Path | None
    status: str  # "ok", "absent", "mismatch"
    detail: str = ""


def locate(name: str) -> Located:
    """Find ``name`` in the weights folder, then in the usual caches; verify the sha256 of what is found."""
    s = spec(name)
    mismatches = []
    for path in [weights_dir() / s.filename, *_cache_candidates(s)]:
        if not path.is_file():
            continue
        digest = cached_sha256(path)
        if s.matches(digest):
            return Located(name, path, "ok")
        mismatches.append(f"{path} (sha256 {digest[:16]}...)")
    if mismatches:
        return Located(name, None, "mismatch", "found but hash differs from the official file: " + "; ".join(mismatches))
    return Located(name, None, "absent")


def fix_command(name: str) -> str:
    """The commands that make ``name`` available."""
    s = spec(name)
    return f"`qa weights fetch {name}` (downloads {s.url}) or `qa weights import PATH/{s.filename}`"


def unavailable_reason(names: tuple[str, ...] | list[str]) -> str | None:
    """None when every named file is present and verified; else what is missing and the fix command."""
    problems = []
    for n in names:
        loc = locate(n)
        if loc.status == "ok":
            continue
        what = "absent" if loc.status == "absent" else loc.detail
        problems.append(f"weights {n!r} {what}; fix: {fix_command(n)}")
    return "; ".join(problems) if problems else None


def require(name: str) -> Path:
    """Path of the verified file ``name``; :class:`WeightsMissingError` with the fix command otherwise."""
    loc = locate(name)
    if loc.path is None:
        raise WeightsMissingError(f"weights {name!r} not available ({loc.status}) {loc.detail}".rstrip(),
                                  fix_command(name))
    return loc.path


def import_file(path: str | Path) -> tuple[str, Path]:
    """Copy a known official file into the weights folder after checking its sha256; returns (name, dest).

    Refuses a file whose hash matches no table entry, naming the entry its file name suggests.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise QAError(f"{src}: no such file")
    try:
        digest = sha256_file(src)
    except OSError as exc:
        raise QAError(f"{src}: cannot read it ({exc})", "check the file's permissions") from exc
    for s in KNOWN.values():
        if s.matches(digest) and (s.sha256 is not None or src.name in (s.filename, *s.aliases)):
            if s.fmt == "state-dict":
                check_plain_state_dict(src)
            dest = weights_dir() / s.filename
            _copy_into(src, dest)
            return s.name, dest
    by_name = [s for s in KNOWN.values() if src.name in (s.filename, *s.aliases)]
    hint = (f"it is named like {by_name[0].name!r}, whose official sha256 is {by_name[0].pinned}"
            if by_name else "see `qa weights list` for the files qa knows")
    raise QAError(f"{src}: sha256 {digest} matches no official weights file; refused", hint)


def _copy_into(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary ``.part`` file of its own beside it, renamed last (``dest`` is
    never half-written) and removed on any failure; :class:`QAError` saying what failed and that nothing was
    imported when the folder cannot be written or the copy fails (disk full, file-size limit)."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(tmp, "xb")  # closed by the `with` below
    except OSError as exc:
        what = ("is a file, not a folder" if dest.parent.exists() and not dest.parent.is_dir()
                else f"cannot be written ({exc.strerror or exc})")
        raise QAError(f"weights folder {dest.parent} {what}; nothing imported",
                      f"make it a writable folder, or set ${WEIGHTS_ENV} to one") from exc
    try:
        with out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.replace(tmp, dest)
    except OSError as exc:
        raise QAError(f"copying {src} to {dest} failed ({exc.strerror or exc}); nothing imported",
                      f"check that {dest.parent} is writable and has space (or set ${WEIGHTS_ENV} to another "
                      "folder), then import again") from exc
    finally:
        with contextlib.suppress(OSError):  # the copy's own error is the one to report
            tmp.unlink(missing_ok=True)


def check_plain_state_dict(path: Path) -> None:
    """Refuse (:class:`QAError`) a file that ``torch.load(weights_only=True)`` cannot read or that is not a flat
    ``{name: tensor}`` dict: pickled code, wrapped checkpoints and other objects are not imported."""
    import torch  # noqa: PLC0415

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is not a plain state dict
        raise QAError(f"{path}: not a weights-only torch file ({type(exc).__name__}: {str(exc)[:160]}); refused",
                      "qa imports only plain state dicts of tensors") from exc
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise QAError(f"{path}: not a plain state dict ({{name: tensor}}), got {type(obj).__name__}; refused",
                      "qa imports only plain state dicts of tensors")


def verify() -> list[Located]:
    """Locate and hash-check every known file."""
    return [locate(n) for n in sorted(KNOWN)]


def fetch(name: str, log=print) -> Path:  # noqa: ANN001
    """Download ``name`` from its official URL (the only network access in qa), verify, store. Says so first."""
    import urllib.request  # noqa: PLC0415

    s = spec(name)
    dest = weights_dir() / s.filename
    log(f"qa weights fetch: NETWORK ACCESS: downloading {s.url} -> {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(s.url, timeout=60) as resp:  # noqa: S310
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
        digest = h.hexdigest()
        if not s.matches(digest):
            raise QAError(f"downloaded {s.url} has sha256 {digest}, expected {s.pinned}; discarded")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


# ---- functions for the command line (`qa weights ...`); each prints and returns an exit code ----

def cli_list(out=sys.stdout) -> int:  # noqa: ANN001
    """`qa weights list`: every known file, its status, pinned hash, licence and the metrics using it."""
    print(f"weights folder: {weights_dir()} (override with ${WEIGHTS_ENV})", file=out)
    for s in sorted(KNOWN.values(), key=lambda x: x.name):
        loc = locate(s.name)
        where = str(loc.path) if loc.path else loc.status
        print(f"{s.name:28s} {loc.status:8s} {where}", file=out)
        print(f"    file {s.filename}  sha256 {s.pinned}", file=out)
        print(f"    licence {s.licence}; used by {', '.join(s.metrics)}; source {s.url}", file=out)
    return 0


def cli_import(path: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`qa weights import PATH`: copy after the sha256 check. A missing file is a usage error (:class:`QAError`,
    exit 2); a file refused by its hash or contents: exit 1, the reason on ``err`` (default: ``out`` when given,
    else stderr)."""
    out, err = _streams(out, err)
    src = Path(path).expanduser()
    if not src.is_file():
        raise QAError(f"{src}: no such file" if not src.exists() else f"{src}: not a file",
                      "qa weights import PATH: a weights file you downloaded (see `qa weights list`)")
    try:
        name, dest = import_file(src)
    except QAError as exc:
        print(f"qa weights: error: {exc}", file=err)
        return 1
    print(f"imported {name} -> {dest}", file=out)
    return 0


def cli_verify(out=sys.stdout) -> int:  # noqa: ANN001
    """`qa weights verify`: exit 1 if any file found has a wrong hash (absent files are only listed)."""
    bad = 0
    for loc in verify():
        print(f"{loc.name:28s} {loc.status:8s} {loc.path or ''} {loc.detail}".rstrip(), file=out)
        bad += loc.status == "mismatch"
    return 1 if bad else 0


def cli_fetch(name: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`qa weights fetch NAME`: the explicit download. An unknown NAME is a usage error (:class:`QAError`, exit 2);
    a failed or mismatching download: exit 1, the reason on ``err`` (default: ``out`` when given, else stderr)."""
    out, err = _streams(out, err)
    spec(name)  # unknown: QAError naming the known ones, before any network access
    try:
        dest = fetch(name, log=lambda m: print(m, file=out))
    except (QAError, OSError) as exc:
        print(f"qa weights: error: {exc}", file=err)
        return 1
    print(f"fetched {name} -> {dest}", file=out)
    return 0


def _streams(out: TextIO | None, err: TextIO | None) -> tuple[TextIO, TextIO]:
    """(out, err) of a `qa weights` command: stdout and stderr, or everything on ``out`` when only it is given."""
    out = sys.stdout if out is None else out
    return out, (err if err is not None else out if out is not sys.stdout else sys.stderr)
