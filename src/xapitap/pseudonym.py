"""Keyed pseudonyms for learners: HMAC-SHA256 of the platform's user id.

The key is made once and kept in its own file beside (never inside) the statement store, so
the store alone cannot link a pseudonym back to a user id; a new key unlinks everything after.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def key_path_for(store: Path) -> Path:
    return store.with_name(store.name + ".key")


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, made (readable by the owner only) if there is none yet."""
    try:
        key = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
        return key
    except ValueError:
        raise ValueError(f"pseudonym key file {path} is not hex; restore it or delete it") from None
    if len(key) < 16:
        raise ValueError(f"pseudonym key in {path} is too short ({len(key)} bytes)")
    return key


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def name(self, platform: str, id_kind: str, user_id: str) -> str:
        message = f"{platform}\x1f{id_kind}\x1f{user_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def event_id(self, digest: str) -> str:
        """A published id for an event that carries none of its own: the hash of its raw
        content (which may hold a raw user id), keyed, so it cannot be brute-forced back."""
        mac = hmac.new(self._key, f"event\x1f{digest}".encode(), hashlib.sha256)
        return "hmac:" + mac.hexdigest()[:32]
