"""Turn an analytics request body into JSON data, with a cap on the decoded size.

Browsers send analytics as JSON, as JSON inside `text/plain` (fetch and sendBeacon avoid CORS
preflights that way), as form fields, or as newline-separated JSON lines, sometimes compressed.
Every failure is a `DecodeError` with a reason a person can act on; nothing here raises anything
else for bad input.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import zlib
from typing import Any
from urllib.parse import parse_qsl

import brotli

DEFAULT_MAX_BYTES = 1024 * 1024
_BROTLI_CHUNK = 1024


class DecodeError(ValueError):
    """The body could not be decoded; the message says why."""


def decode_body(
    body: bytes, content_type: str | None, content_encoding: str | None, max_bytes: int
) -> Any:
    """Return the JSON value carried by a request body."""
    if len(body) > max_bytes:
        raise DecodeError(f"body of {len(body)} bytes exceeds the {max_bytes}-byte cap")
    raw = decompress(body, content_encoding, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"body is not UTF-8 ({e.reason} at byte {e.start})") from None
    text = text.strip()
    if not text:
        raise DecodeError("empty body")
    mime = (content_type or "").split(";")[0].strip().lower()
    if text[0] in "{[":
        return _parse_json(text)
    if mime == "application/x-www-form-urlencoded" or "=" in text:
        return _parse_form(text)
    raise DecodeError(f"body is neither JSON nor form data (content type {mime or 'missing'})")


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding (applied in header order), refusing output beyond max_bytes."""
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    for encoding in reversed(encodings):
        if encoding == "identity":
            continue
        try:
            body = _DECOMPRESSORS[encoding](body, max_bytes)
        except KeyError:
            raise DecodeError(f"unsupported Content-Encoding {encoding!r}") from None
        except DecodeError:
            raise
        except Exception as e:  # each codec raises its own error type for corrupt input
            raise DecodeError(f"corrupt {encoding} body: {e}") from None
    return body


def _zlib(wbits: int) -> Any:
    def inflate(data: bytes, max_bytes: int) -> bytes:
        d = zlib.decompressobj(wbits)
        out = d.decompress(data, max_bytes + 1)
        if len(out) > max_bytes or d.unconsumed_tail:
            raise DecodeError(f"decompressed body exceeds the {max_bytes}-byte cap")
        if not d.eof:
            raise DecodeError("truncated compressed body")
        return out

    return inflate


def _deflate(data: bytes, max_bytes: int) -> bytes:
    # "deflate" is zlib-wrapped by the RFC, but some clients send raw deflate streams.
    try:
        return _zlib(zlib.MAX_WBITS)(data, max_bytes)  # type: ignore[no-any-return]
    except zlib.error:
        return _zlib(-zlib.MAX_WBITS)(data, max_bytes)  # type: ignore[no-any-return]


def _brotli(data: bytes, max_bytes: int) -> bytes:
    # brotli 1.1 has no output limit, so feed small slices and stop once past the cap.
    d = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(data), _BROTLI_CHUNK):
        out += d.process(data[i : i + _BROTLI_CHUNK])
        if len(out) > max_bytes:
            raise DecodeError(f"decompressed body exceeds the {max_bytes}-byte cap")
    if not d.is_finished():
        raise DecodeError("truncated compressed body")
    return bytes(out)


def _zstd_module() -> tuple[str, Any]:
    """The zstd module this mitmproxy brought: the standard library's (3.14+) or its backport
    (mitmproxy 12), else `zstandard` (mitmproxy 11)."""
    for name in ("compression.zstd", "backports.zstd", "zstandard"):
        try:
            return name, importlib.import_module(name)
        except ImportError:
            continue
    return "", None


_ZSTD_NAME, _ZSTD = _zstd_module()


def _zstd(data: bytes, max_bytes: int) -> bytes:
    if _ZSTD is None:
        raise DecodeError("no zstd decoder is installed")
    out = bytearray()
    if _ZSTD_NAME == "zstandard":
        with _ZSTD.ZstdDecompressor().stream_reader(data) as reader:
            while chunk := reader.read(max_bytes + 1 - len(out)):
                out += chunk
                if len(out) > max_bytes:
                    break
    else:
        d = _ZSTD.ZstdDecompressor()
        out += d.decompress(data, max_length=max_bytes + 1)
        if len(out) <= max_bytes and not d.eof:
            raise DecodeError("truncated compressed body")
    if len(out) > max_bytes:
        raise DecodeError(f"decompressed body exceeds the {max_bytes}-byte cap")
    return bytes(out)


_DECOMPRESSORS = {
    "gzip": _zlib(zlib.MAX_WBITS | 16),
    "x-gzip": _zlib(zlib.MAX_WBITS | 16),
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:  # newline-delimited JSON batch
            try:
                return [json.loads(line) for line in lines]
            except json.JSONDecodeError:
                pass
        raise DecodeError(
            f"invalid JSON: {first_error.msg} (line {first_error.lineno}, "
            f"column {first_error.colno})"
        ) from None


def _parse_form(text: str) -> dict[str, Any]:
    """Form fields, with values that hold JSON (plain or base64) decoded."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as e:
        raise DecodeError(f"invalid form body: {e}") from None
    return {key: _maybe_json(value) for key, value in pairs}


def _maybe_json(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    # base64 of '{"', '[{' and '["' starts with these; Mixpanel and pixel APIs send JSON so.
    if len(stripped) >= 8 and stripped[:2] in ("ey", "W3", "Wy"):
        try:
            padded = stripped + "=" * (-len(stripped) % 4)
            decoded = base64.b64decode(padded, altchars=b"-_", validate=False)
            return json.loads(decoded)
        except (binascii.Error, ValueError):
            return value
    return value
