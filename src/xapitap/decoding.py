"""Turn an analytics request body into JSON data, with bounds on everything a page controls.

Browsers send analytics as JSON, as JSON inside `text/plain` (fetch and sendBeacon avoid CORS
preflights that way), as form fields, or as newline-separated JSON lines, sometimes compressed.
Every failure is a `DecodeError` with a reason a person can act on; nothing here raises anything
else for bad input.

Any page can send anything to its own collector, so the bounds are:
- size: the body, and its content after each Content-Encoding (gzip, deflate, br, zstd; at most
  `MAX_CODINGS` of them), is at most `max_bytes` (xapi_max_body_bytes, 1 MiB by default).
  Decompression is incremental and stops at the cap plus one chunk (`_CHUNK`), so a 1 GiB
  bomb costs about as much as a 1 MiB body (for brotli, see `BROTLI_STRATEGY` below).
  Multi-member gzip and multi-frame zstd decode, up to `MAX_PARTS` members or frames.
- nesting: documents nested deeper than `MAX_DEPTH` (64) levels are refused.
- numbers: integers of more than `MAX_INT_DIGITS` (4300, Python's own limit) digits are
  refused; numbers a browser's JSON.stringify would have sent as null (NaN, Infinity, and
  literals beyond a double's range) become None; -0 becomes 0.
- strings (values and keys): lone surrogates become U+FFFD, NUL characters are removed, and
  strings longer than `MAX_STRING_CHARS` (8192) characters are cut to that length.
- form bodies: at most `MAX_FORM_FIELDS` (1000) fields.
The normalisation is one pass over the decoded document, linear in the body's size.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import importlib
import json
import math
import re
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import brotli

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_CODINGS = 4
MAX_PARTS = 256
MAX_DEPTH = 64
MAX_INT_DIGITS = 4300
MAX_STRING_CHARS = 8192
MAX_FORM_FIELDS = 1000

# Decompressed output is taken this much at a time (brotli, the native brotli decoder);
# compressed input is fed this much at a time (gzip members, zstd frames, brotli).
_CHUNK = 64 * 1024
_FLOAT_MAX = 2**1024  # integers at or beyond this are infinite as a double


class DecodeError(ValueError):
    """The body could not be decoded; the message says why."""


def decode_body(
    body: bytes, content_type: str | None, content_encoding: str | None, max_bytes: int
) -> Any:
    """Return the JSON value carried by a request body, normalised (see the module doc)."""
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
        return normalise(_parse_json(text))
    if mime == "application/x-www-form-urlencoded" or "=" in text:
        return normalise(_parse_form(text))
    raise DecodeError(f"body is neither JSON nor form data (content type {mime or 'missing'})")


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding (applied in header order), refusing output beyond max_bytes.

    No coding produces more than max_bytes plus one chunk before it is stopped (brotli's
    last-resort "bytewise" strategy excepted: one meta-block)."""
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if len(encodings) > MAX_CODINGS:
        raise DecodeError(f"more than {MAX_CODINGS} Content-Encodings ({len(encodings)})")
    for encoding in reversed(encodings):
        decoder = _DECOMPRESSORS.get(encoding)
        if decoder is None:
            raise DecodeError(f"unsupported Content-Encoding {encoding!r}")
        try:
            body = decoder(body, max_bytes)
        except _OverCap:
            raise DecodeError(
                f"{encoding} body is over {max_bytes} bytes after decompression "
                "(the xapi_max_body_bytes cap)"
            ) from None
        except _Truncated:
            raise DecodeError(f"truncated compressed body ({encoding})") from None
        except DecodeError:
            raise
        except Exception as e:  # each codec raises its own error type for corrupt input
            raise DecodeError(f"corrupt {encoding} body: {e}") from None
    return body


class _OverCap(Exception):
    pass


class _Truncated(Exception):
    pass


def _grow(out: bytearray, piece: bytes, max_bytes: int) -> None:
    out += piece
    if len(out) > max_bytes:
        raise _OverCap


def _zlib(wbits: int, members: bool) -> Callable[[bytes, int], bytes]:
    """Inflate, never asking zlib for more than the cap leaves room for; with `members`,
    one gzip member after another (zero padding between them is allowed, as gzip does)."""

    def inflate(data: bytes, max_bytes: int) -> bytes:
        view = memoryview(data)
        out = bytearray()
        pos = 0
        for _ in range(MAX_PARTS):
            d = zlib.decompressobj(wbits)
            while not d.eof:
                if pos >= len(data):
                    raise _Truncated
                piece = view[pos : pos + _CHUNK]
                # max_length is at least 1 here (0 would mean "no limit" to zlib)
                _grow(out, d.decompress(piece, max_bytes + 1 - len(out)), max_bytes)
                pos += len(piece) - len(d.unused_data)
            if not members:
                return bytes(out)  # as before, whatever follows a deflate stream is ignored
            padding = _NON_ZERO.search(data, pos)
            if padding is None:
                return bytes(out)
            pos = padding.start()
        raise DecodeError(f"more than {MAX_PARTS} gzip members")

    return inflate


_NON_ZERO = re.compile(rb"[^\x00]")
_gzip = _zlib(zlib.MAX_WBITS | 16, members=True)
_zlib_wrapped = _zlib(zlib.MAX_WBITS, members=False)
_raw_deflate = _zlib(-zlib.MAX_WBITS, members=False)


def _deflate(data: bytes, max_bytes: int) -> bytes:
    # "deflate" is zlib-wrapped by the RFC, but some clients send raw deflate streams.
    try:
        return _zlib_wrapped(data, max_bytes)
    except zlib.error:
        return _raw_deflate(data, max_bytes)


# brotli: three ways to stop at the cap, best first.
# 1. brotli >= 1.2 (mitmproxy 12) limits the output of each `process` call.
# 2. brotli 1.1 (mitmproxy 11) cannot; its extension module exports libbrotli's decoder
#    (BrotliDecoderDecompressStream, a stable C API since brotli 1.0), which writes into a
#    buffer of our size. ctypes releases the GIL during the call.
# 3. Otherwise, one input byte at a time: a byte can still complete a meta-block, so this
#    can overshoot by one meta-block (at most 16 MiB; 8 MiB for bombs made by brotli itself).


def _brotli_limited(data: bytes, max_bytes: int) -> bytes:
    d = brotli.Decompressor()
    view = memoryview(data)
    out = bytearray()
    pos = 0
    while not d.is_finished():
        piece: bytes | memoryview = b""  # b"": take the output that is waiting
        if d.can_accept_more_data() and pos < len(data):
            piece = view[pos : pos + _CHUNK]
            pos += len(piece)
        produced = d.process(piece, output_buffer_limit=_CHUNK)
        _grow(out, produced, max_bytes)
        if not piece and not produced:
            raise _Truncated
    if pos < len(data):
        raise DecodeError("corrupt br body: data after the end of the stream")
    return bytes(out)


class _NativeBrotli:
    ERROR, SUCCESS, NEEDS_MORE_INPUT, NEEDS_MORE_OUTPUT = 0, 1, 2, 3

    def __init__(self, library: str) -> None:
        lib = ctypes.CDLL(library)
        self.create = lib.BrotliDecoderCreateInstance
        self.create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.create.restype = ctypes.c_void_p
        self.destroy = lib.BrotliDecoderDestroyInstance
        self.destroy.argtypes = [ctypes.c_void_p]
        self.destroy.restype = None
        self.stream = lib.BrotliDecoderDecompressStream
        size_p = ctypes.POINTER(ctypes.c_size_t)
        ptr_p = ctypes.POINTER(ctypes.c_void_p)
        self.stream.argtypes = [ctypes.c_void_p, size_p, ptr_p, size_p, ptr_p, size_p]
        self.stream.restype = ctypes.c_int
        self.error_code = lib.BrotliDecoderGetErrorCode
        self.error_code.argtypes = [ctypes.c_void_p]
        self.error_code.restype = ctypes.c_int
        self.error_string = lib.BrotliDecoderErrorString
        self.error_string.argtypes = [ctypes.c_int]
        self.error_string.restype = ctypes.c_char_p

    def decompress(self, data: bytes, max_bytes: int) -> bytes:
        state = self.create(None, None, None)
        if not state:
            raise MemoryError("no brotli decoder")
        try:
            source = ctypes.c_char_p(data)  # points into `data`, no copy
            next_in = ctypes.c_void_p(ctypes.cast(source, ctypes.c_void_p).value)
            avail_in = ctypes.c_size_t(len(data))
            buffer = ctypes.create_string_buffer(_CHUNK)
            out = bytearray()
            while True:
                next_out = ctypes.c_void_p(ctypes.addressof(buffer))
                avail_out = ctypes.c_size_t(_CHUNK)
                result = self.stream(
                    state,
                    ctypes.byref(avail_in),
                    ctypes.byref(next_in),
                    ctypes.byref(avail_out),
                    ctypes.byref(next_out),
                    None,
                )
                _grow(out, ctypes.string_at(buffer, _CHUNK - avail_out.value), max_bytes)
                if result == self.NEEDS_MORE_OUTPUT:
                    continue
                if result == self.SUCCESS:
                    if avail_in.value:
                        raise DecodeError("corrupt br body: data after the end of the stream")
                    return bytes(out)
                if result == self.NEEDS_MORE_INPUT:
                    raise _Truncated
                reason = self.error_string(self.error_code(state)) or b"decoder error"
                raise DecodeError(f"corrupt br body: {reason.decode('ascii', 'replace')}")
        finally:
            self.destroy(state)


def _native_brotli() -> _NativeBrotli | None:
    try:
        extension = importlib.import_module("_brotli")
        return _NativeBrotli(str(extension.__file__))
    except (ImportError, OSError, AttributeError, TypeError):
        return None


def _brotli_bytewise(data: bytes, max_bytes: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray()
    for i in range(len(data)):
        _grow(out, d.process(data[i : i + 1]), max_bytes)
    if not d.is_finished():
        raise _Truncated
    return bytes(out)


def _brotli_strategy() -> tuple[str, Callable[[bytes, int], bytes]]:
    if hasattr(brotli.Decompressor(), "can_accept_more_data"):
        return "output limit", _brotli_limited
    native = _native_brotli()
    if native is not None:
        return "native decoder", native.decompress
    return "bytewise", _brotli_bytewise


BROTLI_STRATEGY, _brotli = _brotli_strategy()


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
        # Reads stop at the cap; zstandard reports no truncation here (a cut-off frame
        # yields what it decoded, which then fails as JSON).
        reader = _ZSTD.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        with reader:
            while chunk := reader.read(min(_CHUNK, max_bytes + 1 - len(out))):
                _grow(out, chunk, max_bytes)
        return bytes(out)
    view = memoryview(data)
    pos = 0
    for _ in range(MAX_PARTS):  # one frame after another
        d = _ZSTD.ZstdDecompressor()
        while not d.eof:
            if d.needs_input:
                if pos >= len(data):
                    raise _Truncated
                piece: bytes | memoryview = view[pos : pos + _CHUNK]
                pos += len(piece)
            else:  # output is waiting (only once the cap is reached, in practice)
                piece = b""
            _grow(out, d.decompress(piece, max_length=max_bytes + 1 - len(out)), max_bytes)
        pos -= len(d.unused_data)  # what followed the frame, in what was fed
        if pos >= len(data):
            return bytes(out)
    raise DecodeError(f"more than {MAX_PARTS} zstd frames")


_DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def _parse_int(digits: str) -> int | None:
    if len(digits) - digits.startswith("-") > MAX_INT_DIGITS:
        raise DecodeError(f"an integer of more than {MAX_INT_DIGITS} digits")
    value = int(digits)
    return value if -_FLOAT_MAX < value < _FLOAT_MAX else None


def _parse_float(text: str) -> float | None:
    value = float(text)
    if not math.isfinite(value):
        return None  # beyond a double: the browser's JSON.stringify would have sent null
    return value + 0.0  # -0.0 becomes 0.0


def _parse_constant(name: str) -> None:
    return None  # NaN, Infinity, -Infinity: JSON.stringify sends these as null


def _loads(text: str | bytes) -> Any:
    """json.loads with the number rules above; deep nesting is a DecodeError."""
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise DecodeError(f"nested deeper than {MAX_DEPTH} levels") from None


def _parse_json(text: str) -> Any:
    try:
        return _loads(text)
    except json.JSONDecodeError as first_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:  # newline-delimited JSON batch
            try:
                return [_loads(line) for line in lines]
            except json.JSONDecodeError:
                pass
        raise DecodeError(
            f"invalid JSON: {first_error.msg} (line {first_error.lineno}, "
            f"column {first_error.colno})"
        ) from None


def _parse_form(text: str) -> dict[str, Any]:
    """Form fields, with values that hold JSON (plain or base64) decoded."""
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError as e:
        raise DecodeError(f"invalid form body: {e}") from None
    return {key: _maybe_json(value) for key, value in pairs}


def _maybe_json(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return _loads(stripped)
        except ValueError:  # JSONDecodeError and DecodeError
            return value
    # base64 of '{"', '[{' and '["' starts with these; Mixpanel and pixel APIs send JSON so.
    if len(stripped) >= 8 and stripped[:2] in ("ey", "W3", "Wy"):
        try:
            padded = stripped + "=" * (-len(stripped) % 4)
            decoded = base64.b64decode(padded, altchars=b"-_", validate=False)
            return _loads(decoded)
        except (binascii.Error, ValueError):  # ValueError: JSON, DecodeError, UnicodeError
            return value
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dirty(s: str) -> bool:
    return (
        len(s) > MAX_STRING_CHARS
        or "\0" in s
        or (not s.isascii() and _SURROGATE.search(s) is not None)
    )


def clean_text(s: str) -> str:
    """A string as it may be stored: at most MAX_STRING_CHARS characters, no NUL, no lone
    surrogate (U+FFFD instead)."""
    if not _dirty(s):
        return s
    if len(s) > MAX_STRING_CHARS:
        s = s[:MAX_STRING_CHARS]
    if "\0" in s:
        s = s.replace("\0", "")
    if not s.isascii():
        s = _SURROGATE.sub("\ufffd", s)
    return s


def normalise(doc: Any) -> Any:
    """Apply the nesting and string bounds to a decoded document, in place where it can.

    One pass, without recursion: every container and string is looked at once."""
    if isinstance(doc, str):
        return clean_text(doc)
    if not isinstance(doc, list | dict):
        return doc
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"nested deeper than {MAX_DEPTH} levels")
        if type(node) is dict and any(type(k) is str and _dirty(k) for k in node):
            items = list(node.items())
            node.clear()
            node.update((clean_text(k) if type(k) is str else k, v) for k, v in items)
        # Replacing a value (never a key) while iterating is allowed.
        for key, value in node.items() if type(node) is dict else enumerate(node):
            if type(value) is str:
                if _dirty(value):
                    node[key] = clean_text(value)
            elif type(value) is dict or type(value) is list:
                stack.append((value, depth + 1))
    return doc
