from __future__ import annotations

import base64
import gzip
import importlib
import json
import zlib

import brotli
import pytest

from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body

DOC = {"type": "track", "event": "Video Playback Paused", "properties": {"position": 12}}
RAW = json.dumps(DOC).encode()
CAP = 1 << 20


def zstd_compress(data: bytes) -> bytes:
    """With whichever zstd module the installed mitmproxy brought (11 and 12 differ)."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name).compress(data)  # type: ignore[no-any-return]
        except ImportError:
            continue
    return importlib.import_module("zstandard").ZstdCompressor().compress(data)  # type: ignore[no-any-return]


def raw_deflate(data: bytes) -> bytes:
    """A deflate stream without the zlib wrapper, as some clients send "deflate"."""
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        (None, RAW),
        ("identity", RAW),
        ("gzip", gzip.compress(RAW)),
        ("deflate", zlib.compress(RAW)),
        ("deflate", raw_deflate(RAW)),
        ("br", brotli.compress(RAW)),
        ("zstd", zstd_compress(RAW)),
    ],
)
def test_json_in_any_content_encoding(encoding: str | None, data: bytes) -> None:
    assert decode_body(data, "text/plain", encoding, CAP) == DOC


def test_text_plain_beacon_with_charset() -> None:
    assert decode_body(RAW, "text/plain;charset=UTF-8", None, CAP) == DOC


def test_json_array_batch() -> None:
    assert decode_body(json.dumps([DOC, DOC]).encode(), "text/plain", None, CAP) == [DOC, DOC]


def test_newline_delimited_json() -> None:
    body = RAW + b"\n" + RAW + b"\n"
    assert decode_body(body, "application/x-ndjson", None, CAP) == [DOC, DOC]


def test_form_fields_with_json_and_base64_json() -> None:
    encoded = base64.b64encode(RAW).decode()
    body = f"event_type=play_video&event={json.dumps(DOC)}&data={encoded}&page=x".encode()
    got = decode_body(body, "application/x-www-form-urlencoded", None, CAP)
    assert got == {"event_type": "play_video", "event": DOC, "data": DOC, "page": "x"}


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        (b"", None, "empty body"),
        (b'{"type": ', None, "invalid JSON"),
        (b"\xff\xfe{}", None, "not UTF-8"),
        (b"just words", None, "neither JSON nor form"),
        (b"not gzip at all", "gzip", "corrupt gzip"),
        (gzip.compress(RAW)[:-12], "gzip", "truncated"),
        (RAW, "compress", "unsupported Content-Encoding"),
    ],
)
def test_bad_bodies_give_a_reason(body: bytes, encoding: str | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_body(body, "text/plain", encoding, CAP)


def test_body_over_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(DecodeError, match="exceeds the 10-byte cap"):
        decode_body(RAW, "text/plain", None, 10)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", zstd_compress),
    ],
)
def test_decompression_bombs_stop_at_the_cap(encoding: str, compress: object) -> None:
    bomb = compress(b"{" + b" " * 5_000_000 + b"}")  # type: ignore[operator]
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError, match="cap"):
        decode_body(bomb, "application/json", encoding, CAP)
