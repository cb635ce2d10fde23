from __future__ import annotations

import base64
import functools
import gzip
import importlib
import json
import math
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from xapitap import decoding
from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body
from xapitap.decoding import decompress

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


# Issue 14: hostile bodies. Bounds are in decoding.py's docstring.

MIB = 1 << 20
SPACES = b" " * MIB


def _zstd_module() -> object:
    for name in ("compression.zstd", "backports.zstd", "zstandard"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise AssertionError("no zstd module")


@functools.cache
def gib_bomb(encoding: str) -> bytes:
    """Compressed bodies that decode to 1 GiB of spaces, each made in about a second."""
    if encoding == "gzip":  # 1024 members of 1 MiB each (multi-member gzip is valid)
        return gzip.compress(SPACES, 9) * 1024
    if encoding == "deflate":  # raw deflate: 1024 flushed copies of a 1 MiB block, then the end
        c = zlib.compressobj(9, wbits=-15)
        block = c.compress(SPACES) + c.flush(zlib.Z_FULL_FLUSH)
        return block * 1024 + zlib.compressobj(9, wbits=-15).flush()
    if encoding == "br":
        c = brotli.Compressor(quality=3)
        chunk = b" " * (16 * MIB)
        return b"".join(c.process(chunk) for _ in range(64)) + c.finish()
    module: Any = _zstd_module()
    c = module.ZstdCompressor()
    if hasattr(c, "compressobj"):  # zstandard
        c = c.compressobj()
    return b"".join(c.compress(SPACES) for _ in range(1024)) + c.flush()  # type: ignore[no-any-return]


def peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_gib_bombs_stop_at_the_cap_in_bounded_memory(encoding: str) -> None:
    bomb = gib_bomb(encoding)

    def run() -> None:
        with pytest.raises(DecodeError, match=f"{encoding} body is over {MIB} bytes after decomp"):
            decompress(bomb, encoding, MIB)

    if encoding == "br" and decoding.BROTLI_STRATEGY == "bytewise":
        pytest.skip("this brotli can only be fed a byte at a time: up to a meta-block over")
    assert peak_bytes(run) < 4 * MIB  # the cap, plus a chunk, plus bookkeeping


def test_bombs_inside_a_chain_of_codings_stop_at_the_cap() -> None:
    inner = gzip.compress(b"{" + b" " * (8 * MIB) + b"}")
    with pytest.raises(DecodeError, match="gzip body is over"):
        decode_body(brotli.compress(inner), "application/json", "gzip, br", CAP)


def test_chains_of_codings_decode_in_header_order() -> None:
    body = brotli.compress(gzip.compress(RAW))
    assert decode_body(body, "text/plain", "gzip, identity, br", CAP) == DOC


def test_too_many_codings_are_refused() -> None:
    with pytest.raises(DecodeError, match="more than 4 Content-Encodings"):
        decode_body(RAW, "text/plain", "gzip, gzip, gzip, gzip, gzip", CAP)


def test_a_body_of_exactly_the_cap_decodes() -> None:
    body = b"[" + b" " * (1000 - 2) + b"]"
    for encoding, data in [
        ("gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("br", brotli.compress(body)),
        ("zstd", zstd_compress(body)),
    ]:
        assert decompress(data, encoding, 1000) == body
        with pytest.raises(DecodeError, match="over 999 bytes"):
            decompress(data, encoding, 999)


def test_multi_member_gzip_decodes_whole() -> None:
    first, second = RAW[:20], RAW[20:]
    body = gzip.compress(first) + gzip.compress(second)
    assert decode_body(body, "text/plain", "gzip", CAP) == DOC
    # zero padding after a member is allowed, as gzip(1) allows it
    assert decode_body(body + b"\0" * 16, "text/plain", "gzip", CAP) == DOC


@pytest.mark.parametrize(
    ("tail", "reason"),
    [(b"garbage", "corrupt gzip"), (gzip.compress(b"x")[:-3], "truncated")],
)
def test_what_follows_a_gzip_member_must_be_another_member(tail: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_body(gzip.compress(RAW) + tail, "text/plain", "gzip", CAP)


def test_gzip_members_are_bounded_in_number() -> None:
    empty = gzip.compress(b"")
    assert decompress(empty * 256, "gzip", CAP) == b""
    with pytest.raises(DecodeError, match="more than 256 gzip members"):
        decompress(empty * 257, "gzip", CAP)


def test_multi_frame_zstd_decodes_whole() -> None:
    body = zstd_compress(RAW[:20]) + zstd_compress(RAW[20:])
    assert decode_body(body, "text/plain", "zstd", CAP) == DOC


def _brotli_strategies() -> list[str]:
    names = ["bytewise"]
    if hasattr(brotli.Decompressor(), "can_accept_more_data"):
        names.append("output limit")
    if decoding._native_brotli() is not None:
        names.append("native decoder")
    return names


def _brotli_with(strategy: str) -> Callable[[bytes, int], bytes]:
    if strategy == "output limit":
        return decoding._brotli_limited
    if strategy == "native decoder":
        native = decoding._native_brotli()
        assert native is not None
        return native.decompress
    return decoding._brotli_bytewise


@pytest.mark.parametrize("strategy", _brotli_strategies())
def test_each_brotli_strategy_decodes_and_stops(
    strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """brotli 1.2 (mitmproxy 12) limits output itself; 1.1 (mitmproxy 11) cannot, so its
    native decoder is called directly, and failing that the input goes in a byte at a time."""
    monkeypatch.setitem(decoding._DECOMPRESSORS, "br", _brotli_with(strategy))
    assert decode_body(brotli.compress(RAW), "text/plain", "br", CAP) == DOC
    big = b"[" + b'"abc", ' * 100_000 + b"1]"
    assert decompress(brotli.compress(big), "br", CAP) == big
    with pytest.raises(DecodeError, match="br body is over"):
        decompress(gib_bomb("br"), "br", CAP)
    with pytest.raises(DecodeError, match="truncated"):
        decompress(brotli.compress(big)[:-10], "br", CAP)
    with pytest.raises(DecodeError, match="truncated"):
        decompress(b"", "br", CAP)
    with pytest.raises(DecodeError, match="corrupt br"):
        decompress(brotli.compress(RAW) + b"junk", "br", CAP)
    with pytest.raises(DecodeError, match="corrupt br"):
        decompress(b"\xff" * 64, "br", CAP)


def test_the_brotli_in_use_stops_exactly() -> None:
    """Both mitmproxy 11 (brotli 1.1) and 12 (brotli 1.2) get an exact strategy here."""
    assert decoding.BROTLI_STRATEGY in ("output limit", "native decoder")


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_nesting_up_to_the_bound_is_kept() -> None:
    assert decode_body(_nested(64).encode(), "text/plain", None, CAP) is not None
    assert decode_body(("[" * 64 + "]" * 64).encode(), "text/plain", None, CAP) is not None


@pytest.mark.parametrize(
    "text",
    [
        _nested(65),
        "[" * 65 + "]" * 65,
        "[" * 990 + "]" * 990,  # under Python's recursion limit: parsed, then refused
        "[" * 100_000 + "]" * 100_000,  # over it: no RecursionError escapes
        "[" * 100_000,
        '[{"a":1}]\n' + _nested(100),  # newline-delimited
    ],
)
def test_deep_nesting_is_refused(text: str) -> None:
    with pytest.raises(DecodeError, match="nested deeper than 64 levels"):
        decode_body(text.encode(), "text/plain", None, CAP)


def test_deep_nesting_in_a_form_field_never_escapes() -> None:
    deep = base64.b64encode(("[" * 5000 + "]" * 5000).encode()).decode()
    try:
        got = decode_body(f"data={deep}&e=1".encode(), None, None, CAP)
    except DecodeError:
        return
    assert got["e"] == "1" and isinstance(got["data"], str)


def test_integers_of_more_than_4300_digits_are_refused() -> None:
    body = b'{"position": ' + b"9" * 5000 + b"}"
    with pytest.raises(DecodeError, match="more than 4300 digits"):
        decode_body(body, "text/plain", None, CAP)
    with pytest.raises(DecodeError, match="more than 4300 digits"):
        decode_body(b"[1]\n[" + b"1" * 5000 + b"]\n", "text/plain", None, CAP)
    form = b"e=%7B%22a%22%3A" + b"1" * 5000 + b"%7D"  # e={"a":111...}: kept as text
    assert isinstance(decode_body(form, None, None, CAP)["e"], str)


def test_numbers_a_browser_would_send_as_null_become_none() -> None:
    body = b"[NaN, Infinity, -Infinity, 1e400, -1e400, 1" + b"0" * 400 + b", 12345678901234567890]"
    got = decode_body(body, "text/plain", None, CAP)
    assert got == [None, None, None, None, None, None, 12345678901234567890]


def test_negative_zero_becomes_zero() -> None:
    got = decode_body(b'{"a": -0, "b": -0.0, "c": -0e5, "d": 1.5}', "text/plain", None, CAP)
    assert got == {"a": 0, "b": 0.0, "c": 0.0, "d": 1.5}
    assert all(math.copysign(1, got[k]) == 1 for k in "abc")


def test_lone_surrogates_become_replacement_characters() -> None:
    got = decode_body(b'{"type":"\\ud800","\\udfff k":["a\\udc00b"]}', "text/plain", None, CAP)
    assert got == {"type": "\ufffd", "\ufffd k": ["a\ufffdb"]}
    json.dumps(got, ensure_ascii=False).encode("utf-8")  # storable: no UnicodeEncodeError
    pair = decode_body(b'{"e":"\\ud83d\\ude00"}', "text/plain", None, CAP)
    assert pair == {"e": "\U0001f600"}  # a proper pair is one character, kept


def test_nul_characters_are_removed() -> None:
    got = decode_body(b'{"a\\u0000":"x\\u0000y"}', "text/plain", None, CAP)
    assert got == {"a": "xy"}
    assert decode_body(b"a%00=x%00y", None, None, CAP) == {"a": "xy"}


def test_long_strings_are_cut() -> None:
    long = "x" * 100_000
    got = decode_body(json.dumps({"title": long, long: 1}).encode(), "text/plain", None, CAP)
    assert got == {"title": "x" * 8192, "x" * 8192: 1}
    form = decode_body(f"title={long}".encode(), None, None, CAP)
    assert form == {"title": "x" * 8192}


def test_base64_json_fields_are_normalised_too() -> None:
    inner = base64.b64encode(b'{"event":"\\ud800\\u0000","n":-0.0}').decode()
    assert decode_body(f"data={inner}".encode(), None, None, CAP) == {
        "data": {"event": "\ufffd", "n": 0.0}
    }


def test_form_fields_are_bounded_in_number() -> None:
    ok = "&".join(f"k{i}=1" for i in range(1000))
    assert len(decode_body(ok.encode(), None, None, CAP)) == 1000
    with pytest.raises(DecodeError, match="invalid form body"):
        decode_body((ok + "&k=1").encode(), None, None, CAP)


def test_normalising_is_linear_in_the_body() -> None:
    """A 1 MiB body of hostile strings (surrogates, NUL, long) is done in well under a
    second: one pass, no quadratic step."""
    hostile = ["\ud800" * 50 + "\0" * 50, "y" * 20_000, {"\ud800" * 9000: ["\0"]}]
    doc = json.dumps(hostile * 13)
    assert 0.8 * MIB < len(doc) < CAP
    started = time.perf_counter()
    got = decode_body(doc.encode(), "text/plain", None, CAP)
    assert time.perf_counter() - started < 1.0
    assert got[0] == "\ufffd" * 50 and got[1] == "y" * 8192


def _clean(value: object, depth: int = 1) -> bool:
    if isinstance(value, str):
        return len(value) <= 8192 and "\0" not in value and value.encode("utf-8") is not None
    if isinstance(value, float):
        return math.isfinite(value) and not (value == 0 and math.copysign(1, value) < 0)
    if isinstance(value, list):
        return depth <= 64 and all(_clean(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth <= 64 and all(_clean(k) and _clean(v, depth + 1) for k, v in value.items())
    return True


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(blacklist_categories=()), max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(blacklist_categories=()), max_size=5), inner)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_comes_out_clean(value: object) -> None:
    body = json.dumps([value]).encode()  # ensure_ascii: surrogates travel as \u escapes
    try:
        got = decode_body(body, "text/plain", None, CAP)
    except DecodeError:
        return
    assert _clean(got)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from([None, "gzip", "deflate", "br", "zstd", "gzip, br", "x"]),
    st.sampled_from([None, "application/x-www-form-urlencoded", "text/plain"]),
)
def test_any_body_gives_a_value_or_a_decode_error(
    body: bytes, encoding: str | None, content_type: str | None
) -> None:
    try:
        got = decode_body(body, content_type, encoding, CAP)
    except DecodeError:
        return
    assert _clean(got)
