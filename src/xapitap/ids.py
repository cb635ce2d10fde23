"""Deterministic statement ids shaped as version-4 UUIDs.

The same inputs always give the same id, so a replay or a resend can never duplicate a
statement in an LRS. The Video Profile wants `session-id` (the id of the session's
`initialized` statement) to match the pattern of a v4 UUID; uuid5 ids would not, so we take a
SHA-256 and set the version and variant bits of a v4 UUID.
"""

from __future__ import annotations

import hashlib
import uuid

# Bump when a mapping change alters statement content, so new content never reuses old ids.
MAPPING_VERSION = "2"


def v4_shaped(*parts: str) -> str:
    digest = bytearray(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest)))
