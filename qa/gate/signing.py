"""Reviewer keys for sign-offs: Ed25519 through ``cryptography``, files in the OpenSSH conventions.

* A reviewer's **private key** is an OpenSSH Ed25519 key file (what ``ssh-keygen -t ed25519`` writes, or
  ``qa signoff keygen --key PATH``), unencrypted or encrypted with a passphrase in ``$QA_KEY_PASSPHRASE``.
* The **trusted-keys file** follows git's ``gpg.ssh.allowedSignersFile`` (SSH ``allowed_signers``): one line per
  key, ``PRINCIPALS [OPTIONS] ssh-ed25519 BASE64 [COMMENT]``, principals comma-separated (the reviewer names
  this key may sign as), ``#`` comments. It lives outside the database (in a repository, under review) and is
  what ``qa signoff verify`` trusts; the database only stores public keys and signatures. Options as OpenSSH
  reads them: ``valid-after``/``valid-before`` (``YYYYMMDD[HHMM[SS]]``, ``Z`` for UTC, else local time) bound
  the signing time recorded in a row; ``namespaces="..."`` must include ``qa`` for the key to sign sign-offs;
  ``cert-authority`` lines (SSH certificates) are refused with the reason. Removing a key's line revokes it:
  rows it signed stop counting (and are reported); rows of keys still listed go on counting.

A signature is a plain Ed25519 signature (64 bytes, base64) over ``DOMAIN + message``; it is not the SSHSIG
format, so verify it with qa, not ``ssh-keygen -Y verify``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from qa.errors import QAError
from qa.plain_text import is_unsafe

#: environment variables: the default private key, the default trusted-keys file, a key passphrase
KEY_ENV = "QA_SIGNING_KEY"
TRUSTED_ENV = "QA_TRUSTED_KEYS"
PASSPHRASE_ENV = "QA_KEY_PASSPHRASE"
KEY_TYPE = "ssh-ed25519"
#: the signature namespace of qa sign-offs (an allowed_signers ``namespaces=`` option must list it)
NAMESPACE = "qa"


class SigningError(QAError):
    """A key or trusted-keys file that is missing, unreadable, of the wrong type, or not trusted."""


def public_text(key: Ed25519PublicKey) -> str:
    """``ssh-ed25519 BASE64``: the OpenSSH one-line form of a public key (no comment)."""
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")


def fingerprint(public: str) -> str:
    """``SHA256:...`` of the key blob, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def parse_public(text: str, where: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from ``ssh-ed25519 BASE64 [comment]``."""
    parts = text.split()
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise SigningError(f"{where}: expected '{KEY_TYPE} BASE64', got {text[:40]!r}",
                           "only Ed25519 keys are supported (ssh-keygen -t ed25519)")
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SigningError(f"{where}: not a valid {KEY_TYPE} key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{where}: not an Ed25519 key")
    return key


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key with its public half in OpenSSH text form."""

    private: Ed25519PrivateKey
    public: str
    path: Path

    def sign(self, domain: bytes, message: bytes) -> str:
        """base64 Ed25519 signature of ``domain + message``."""
        return base64.b64encode(self.private.sign(domain + message)).decode("ascii")


def load_signing_key(path: str | Path | None) -> SigningKey:
    """The private key at ``path`` (default ``$QA_SIGNING_KEY``); SigningError with what to do otherwise."""
    raw = path if path is not None else os.environ.get(KEY_ENV)
    if not raw:
        raise SigningError("a sign-off must be signed with the reviewer's key",
                           f"pass --key PATH (an Ed25519 key; make one with `qa signoff keygen --key PATH`) or set ${KEY_ENV}")
    p = Path(raw).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read signing key {p}: {exc.strerror or exc}",
                           "pass --key PATH to your private key file") from exc
    secret = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_ssh_private_key(data, password=secret.encode() if secret else None)
    except UnsupportedAlgorithm as exc:  # an encrypted key needs bcrypt (a dependency of qa)
        raise SigningError(f"{p} is encrypted and this Python cannot decrypt it ({exc})",
                           "install qa's dependencies (`pip install bcrypt`)") from exc
    except TypeError as exc:
        raise SigningError(f"{p} is encrypted with a passphrase and ${PASSPHRASE_ENV} is not set",
                           f"set ${PASSPHRASE_ENV} to the key's passphrase") from exc
    except ValueError as exc:
        why = "wrong passphrase in $" + PASSPHRASE_ENV if secret and "encrypt" not in str(exc).lower() else str(exc)
        raise SigningError(f"{p} is not a readable OpenSSH private key ({why})",
                           f"check ${PASSPHRASE_ENV}, or make a new key with `qa signoff keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{p} is not an Ed25519 key", "make one with `qa signoff keygen --key PATH`")
    return SigningKey(key, public_text(key.public_key()), p)


def generate_key(path: str | Path, principal: str) -> tuple[Path, str]:
    """Write a new Ed25519 key: ``path`` (private, mode 0600) and ``path.pub``; refuses to overwrite.

    Returns the private key path and the ``allowed_signers`` line for ``principal`` to add to the trusted file.
    """
    p = Path(path).expanduser()
    pub = p.with_name(p.name + ".pub")
    if p.exists() or pub.exists():
        raise SigningError(f"{p} or {pub.name} exists already; not overwriting a key", "pass another --key PATH")
    if not principal or any(c.isspace() or c == "," or is_unsafe(c) for c in principal):
        raise SigningError(f"reviewer name {principal!r} must be one word without commas or control characters",
                           "pass --reviewer NAME")
    key = Ed25519PrivateKey.generate()
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    public = public_text(key.public_key())
    pub.write_text(f"{public} {principal}\n", encoding="ascii")
    return p, f"{principal} {public}"


def signature_valid(public: str, signature: str, domain: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public``'s valid Ed25519 signature over ``domain + message`` (trust aside)."""
    try:
        parse_public(public).verify(base64.b64decode(signature, validate=True), domain + message)
    except (InvalidSignature, ValueError, SigningError, IndexError):
        return False
    return True


@dataclass(frozen=True)
class TrustedLine:
    """One key line of the trusted-keys file. ``refused``: why qa cannot honour it ('' when it can)."""

    line: int
    principals: frozenset[str]
    public: str
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    namespaces: tuple[str, ...] | None = None
    refused: str = ""

    def why_not(self, at: datetime | None) -> str:
        """Why this line does not let its key sign a qa sign-off at ``at`` (naive UTC; None: now)."""
        where = f"line {self.line}"
        if self.refused:
            return f"{where}: {self.refused}"
        if self.namespaces is not None and NAMESPACE not in self.namespaces:
            return (f"{where}: namespaces=\"{','.join(self.namespaces)}\" does not include {NAMESPACE!r}, so the key "
                    "may not sign qa sign-offs")
        when = at if at is not None else datetime.now(UTC).replace(tzinfo=None)
        if self.valid_after is not None and when < self.valid_after:
            return f"{where}: signed at {when:%Y-%m-%d %H:%M:%S} UTC, before the key's valid-after {self.valid_after} UTC"
        if self.valid_before is not None and when >= self.valid_before:
            return f"{where}: signed at {when:%Y-%m-%d %H:%M:%S} UTC, not before the key's valid-before {self.valid_before} UTC"
        return ""


@dataclass
class TrustedKeys:
    """The parsed trusted-keys file: its key lines, and notes on lines qa refuses."""

    path: Path
    lines: list[TrustedLine] = field(default_factory=list)

    @property
    def keys(self) -> dict[str, set[str]]:
        """public key text -> every principal it is listed with (refused lines included)."""
        out: dict[str, set[str]] = {}
        for t in self.lines:
            out.setdefault(t.public, set()).update(t.principals)
        return out

    def principals(self, public: str) -> set[str]:
        """The names ``public`` may sign as now (empty when the key is not trusted or every line refuses it)."""
        key = " ".join(public.split()[:2])
        return {p for t in self.lines if t.public == key and not t.why_not(None) for p in t.principals}

    def why_not(self, public: str, reviewer: str, at: datetime | None) -> str:
        """Why ``public`` may not sign as ``reviewer`` at ``at`` (naive UTC; None: now); '' when it may."""
        key = " ".join(public.split()[:2])
        mine = [t for t in self.lines if t.public == key]
        if not mine:
            return (f"its key ({_fp(public)}) is not in the trusted-keys file {self.path} (revoked, or never "
                    "trusted)")
        named = [t for t in mine if reviewer in t.principals]
        if not named:
            names = sorted({p for t in mine for p in t.principals})
            return f"the key that signed it ({_fp(public)}) may not sign as {reviewer!r} (its names: {', '.join(names)})"
        reasons = [t.why_not(at) for t in named]
        return "" if "" in reasons else f"the key ({_fp(public)}) in {self.path.name}: " + "; ".join(reasons)

    def verify(self, public: str, signature: str, domain: bytes, message: bytes) -> bool:
        """Whether ``signature`` is a valid signature of a key listed (and not refused) in this file."""
        return bool(self.principals(public)) and signature_valid(public, signature, domain, message)

    def notes(self) -> list[str]:
        """One line per key line qa refuses (cert-authority, unknown options)."""
        return [f"{self.path}:{t.line}: {t.refused}" for t in self.lines if t.refused]


def _fp(public: str) -> str:
    try:
        return fingerprint(public)
    except (IndexError, ValueError):
        return "unreadable key"


def _time(value: str, where: str) -> datetime:
    """An allowed_signers time (``YYYYMMDD[HHMM[SS]][Z]``; local time without ``Z``) as naive UTC."""
    utc = value.endswith(("Z", "z"))
    digits = value[:-1] if utc else value
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    try:
        if fmt is None or not digits.isdigit():
            raise ValueError(value)
        t = datetime.strptime(digits, fmt)
    except ValueError as exc:
        raise SigningError(f"{where}: time {value!r} is not YYYYMMDD[HHMM[SS]][Z]", "fix the line in the trusted-keys file") from exc
    return t if utc else t.astimezone(UTC).replace(tzinfo=None)


def _options(text: str, where: str) -> dict[str, object]:
    """valid_after, valid_before, namespaces and refused from an allowed_signers options field."""
    out: dict[str, object] = {}
    refused = []
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace, lexer.whitespace_split = ",", True
    for opt in lexer:
        name, _, value = opt.partition("=")
        name = name.strip().lower()
        if name == "cert-authority":
            refused.append("cert-authority: this key is trusted to certify other keys (SSH certificates), which qa "
                           "does not support; list each reviewer's own key instead")
        elif name == "namespaces":
            out["namespaces"] = tuple(n.strip() for n in value.split(",") if n.strip())
        elif name in ("valid-after", "valid-before"):
            out[name.replace("-", "_")] = _time(value.strip(), where)
        else:
            refused.append(f"unknown option {name!r}: qa cannot honour it, so it does not trust this key")
    out["refused"] = "; ".join(refused)
    return out


def _split(line: str) -> list[str]:
    """Whitespace-separated fields with double-quoted parts kept whole (quotes kept)."""
    fields, cur, quoted = [], "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch.isspace() and not quoted:
            if cur:
                fields.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        fields.append(cur)
    return fields


def load_trusted_keys(path: str | Path | None) -> TrustedKeys:
    """Read the trusted-keys file (default ``$QA_TRUSTED_KEYS``); every malformed line is an error naming it."""
    raw = path if path is not None else os.environ.get(TRUSTED_ENV)
    if not raw:
        raise SigningError("sign-offs are checked against a trusted-keys file outside the database, and none was given",
                           f"pass --trusted-keys FILE (lines 'NAME ssh-ed25519 KEY', as git's allowed_signers) "
                           f"or set ${TRUSTED_ENV}")
    p = Path(raw).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningError(f"cannot read trusted-keys file {p}: {exc}", "pass --trusted-keys FILE") from exc
    trusted = TrustedKeys(p)
    for n, line in enumerate(text.splitlines(), start=1):
        parts = _split(line)
        if not parts or parts[0].startswith("#"):
            continue
        at = next((i for i, t in enumerate(parts) if t == KEY_TYPE), None)
        if at is None or at == 0 or at + 1 >= len(parts) or at > 2:
            raise SigningError(f"{p}:{n}: expected 'NAME[,NAME...] [OPTIONS] {KEY_TYPE} BASE64 [COMMENT]'",
                               "only Ed25519 keys are supported")
        public = f"{parts[at]} {parts[at + 1]}"
        parse_public(public, f"{p}:{n}")
        names = frozenset(x for x in parts[0].strip('"').split(",") if x)
        opts = _options(parts[1], f"{p}:{n}") if at == 2 else {"refused": ""}
        trusted.lines.append(TrustedLine(n, names, public, opts.get("valid_after"),  # type: ignore[arg-type]
                                         opts.get("valid_before"), opts.get("namespaces"),  # type: ignore[arg-type]
                                         str(opts["refused"])))
    if not trusted.lines:
        raise SigningError(f"trusted-keys file {p} lists no key", f"add lines 'NAME {KEY_TYPE} BASE64'")
    return trusted
