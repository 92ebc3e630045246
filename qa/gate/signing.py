"""Reviewer keys for sign-offs: Ed25519 through ``cryptography``, files in the OpenSSH conventions.

* A reviewer's **private key** is an OpenSSH Ed25519 key file (what ``ssh-keygen -t ed25519`` writes, or
  ``qa signoff keygen --key PATH``), unencrypted or encrypted with a passphrase in ``$QA_KEY_PASSPHRASE``.
* The **trusted-keys file** follows git's ``gpg.ssh.allowedSignersFile`` (SSH ``allowed_signers``): one line per
  key, ``PRINCIPALS [OPTIONS] ssh-ed25519 BASE64 [COMMENT]``, principals comma-separated (the reviewer names
  this key may sign as), ``#`` comments. It lives outside the database (in a repository, under review) and is
  what ``qa signoff verify`` trusts; the database only stores public keys and signatures.

A signature is a plain Ed25519 signature (64 bytes, base64) over ``DOMAIN + message``; it is not the SSHSIG
format, so verify it with qa, not ``ssh-keygen -Y verify``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from qa.errors import QAError

#: environment variables: the default private key, the default trusted-keys file, a key passphrase
KEY_ENV = "QA_SIGNING_KEY"
TRUSTED_ENV = "QA_TRUSTED_KEYS"
PASSPHRASE_ENV = "QA_KEY_PASSPHRASE"
KEY_TYPE = "ssh-ed25519"


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
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{p} is not a readable OpenSSH private key ({exc})",
                           f"an encrypted key needs ${PASSPHRASE_ENV}; make a new one with `qa signoff keygen`") from exc
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
    if not principal or any(c.isspace() or c == "," for c in principal):
        raise SigningError(f"reviewer name {principal!r} must be one word without commas", "pass --reviewer NAME")
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


@dataclass
class TrustedKeys:
    """The parsed trusted-keys file: public key text -> the principals it may sign as."""

    path: Path
    keys: dict[str, set[str]] = field(default_factory=dict)

    def principals(self, public: str) -> set[str]:
        """The names ``public`` may sign as (empty when the key is not trusted)."""
        return self.keys.get(" ".join(public.split()[:2]), set())

    def verify(self, public: str, signature: str, domain: bytes, message: bytes) -> bool:
        """Whether ``signature`` is ``public``'s valid signature over ``domain + message`` (False if untrusted)."""
        if not self.principals(public):
            return False
        try:
            parse_public(public).verify(base64.b64decode(signature, validate=True), domain + message)
        except (InvalidSignature, ValueError, SigningError):
            return False
        return True


def load_trusted_keys(path: str | Path | None) -> TrustedKeys:
    """Read the trusted-keys file (default ``$QA_TRUSTED_KEYS``); every bad line is an error naming it."""
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
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        at = next((i for i, t in enumerate(parts) if t == KEY_TYPE), None)
        if at is None or at == 0 or at + 1 >= len(parts):
            raise SigningError(f"{p}:{n}: expected 'NAME[,NAME...] [OPTIONS] {KEY_TYPE} BASE64 [COMMENT]'",
                               "only Ed25519 keys are supported")
        public = f"{parts[at]} {parts[at + 1]}"
        parse_public(public, f"{p}:{n}")
        names = {x for x in parts[0].split(",") if x}
        trusted.keys.setdefault(public, set()).update(names)
    if not trusted.keys:
        raise SigningError(f"trusted-keys file {p} lists no key", f"add lines 'NAME {KEY_TYPE} BASE64'")
    return trusted
