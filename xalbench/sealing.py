"""Keyed seals of result files: an HMAC-SHA256 whose key only the results directory's owner can read.

The unkeyed ``content_sha256`` (:func:`xalbench.results.content_hash`) detects damage, not forgery:
anyone who can write a file can recompute it. A :class:`Sealer` adds ``seal_hmac_sha256``, the
HMAC-SHA256 (RFC 2104) over the same canonical JSON (:func:`xalbench.results.canonical_json`) of
everything but the MAC itself (so ``content_sha256`` is covered too), with a per-results-directory
key of 32 random bytes at ``<out>/.xalbench/seal.key`` — directory mode 0700, file mode 0600,
created atomically on first use (two processes creating it at once end up with one key). A
confined strategy or plugin process cannot read it (it is outside every confinement profile;
after a uid drop the file mode forbids it too).

``content_sha256`` stays in every file: the leaderboard's submissions travel without the key, and
``leaderboard check``/``verify`` keep relying on content hashes and re-runs, not on this MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError
from xalbench.results import MAC_FIELD, _clean, canonical_json, content_hash

__all__ = ["KEY_BYTES", "MAC_FIELD", "Sealer", "key_path"]

KEY_BYTES = 32
KEY_DIR = ".xalbench"
KEY_NAME = "seal.key"


def key_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where the seal key of results directory ``out_dir`` lives."""
    return Path(out_dir) / KEY_DIR / KEY_NAME


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o077:
            raise ConfigError(f"{path} is mode {stat.S_IMODE(info.st_mode):04o}: a seal key must be a file readable "
                              f"by its owner only; run `chmod 600 {path}` (or delete it to reseal from scratch)")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte seal key; delete it and rerun "
                          "(cells sealed with the old key are then redone)")
    return key


def _create_key(path: Path) -> bytes:
    """Write a fresh key beside ``path`` and link it into place: the key file appears complete or
    not at all, and exactly one of several concurrent creators wins (``link`` fails if it exists)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won: use its key
    finally:
        os.unlink(tmp)
    return _read_key(path)


class Sealer:
    """Seals and verifies result dicts with one results directory's key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a seal key has {KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    @classmethod
    def for_results(cls, out_dir: str | os.PathLike[str]) -> Sealer:
        """The sealer of ``out_dir``, creating its key on first use."""
        path = key_path(out_dir)
        try:
            return cls(_read_key(path))
        except FileNotFoundError:
            return cls(_create_key(path))

    @classmethod
    def existing(cls, out_dir: str | os.PathLike[str]) -> Sealer | None:
        """The sealer of ``out_dir`` if it has a key, else None (never creates one)."""
        try:
            return cls(_read_key(key_path(out_dir)))
        except FileNotFoundError:
            return None

    def mac(self, data: dict[str, Any]) -> str:
        """HMAC-SHA256 (hex) of ``data``'s canonical JSON without its own MAC field."""
        body = {k: v for k, v in data.items() if k != MAC_FIELD}
        return hmac.new(self._key, canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with ``content_sha256`` (unkeyed, for damage and the leaderboard) and the MAC set."""
        clean = _clean({k: v for k, v in data.items() if k not in ("content_sha256", MAC_FIELD)})
        clean["content_sha256"] = content_hash(clean)
        clean[MAC_FIELD] = self.mac(clean)
        return clean

    def reason(self, data: dict[str, Any]) -> str | None:
        """Why ``data`` is rejected (None if its seal verifies)."""
        mac = data.get(MAC_FIELD)
        if mac is None:
            if "content_sha256" in data:
                return (f"unkeyed legacy seal (content_sha256 only, no {MAC_FIELD}): anyone can recompute it, so it "
                        "proves nothing")
            return f"not sealed (no {MAC_FIELD})"
        if not isinstance(mac, str) or not hmac.compare_digest(mac, self.mac(data)):
            return (f"{MAC_FIELD} does not verify with this results directory's key: edited and resealed without "
                    "the key, or copied from another results directory")
        if "content_sha256" in data and data["content_sha256"] != content_hash(data):
            return "content_sha256 does not match its content"
        return None

    def verify(self, data: dict[str, Any]) -> bool:
        return self.reason(data) is None
