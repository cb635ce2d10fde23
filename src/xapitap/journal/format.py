"""The journal's records, as bytes: a checksummed header, then the payload.

A record is `<length u32><crc32 u32><seq u64><time f64><kind u8>` followed by `length` bytes
of payload; the crc covers everything after itself, so a torn or corrupt record is told from
a good one without trusting any of its fields. A request's payload is its match and the
parts of the HTTP request that translation reads, with the body as sent (still
Content-Encoded): decoding, even of a bomb, is the translator's cost, never the proxy's.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from enum import IntEnum

from xapitap.capture import Capture
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch

HEADER = struct.Struct("<IIQdB")
_CHECKED = struct.Struct("<QdB")  # the header's fields after the crc
_META_LENGTH = struct.Struct("<I")
# Larger records are corrupt by definition: no request the proxy journals comes near this.
MAX_PAYLOAD = 256 * 1024 * 1024


class Kind(IntEnum):
    REQUEST = 1  # an analytics request, matched
    CONFIG = 2  # the translation settings from here on
    TICK = 3  # the proxy's clock: sessions idle at this time end
    STOP = 4  # the proxy stopped: every open session ends


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    time: float  # epoch seconds, on the proxy's clock
    kind: Kind
    payload: bytes

    @property
    def size(self) -> int:
        return HEADER.size + len(self.payload)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


class Corrupt(ValueError):
    """Bytes that are no whole, intact record."""


def encode(record: Record) -> bytes:
    checked = _CHECKED.pack(record.seq, record.time, record.kind) + record.payload
    return (
        struct.pack("<II", len(record.payload), zlib.crc32(checked)) + checked[: _CHECKED.size]
    ) + record.payload


def read_header(data: bytes) -> tuple[int, int]:
    """The payload length and crc of a header; Corrupt if the length cannot be."""
    length, crc = struct.unpack_from("<II", data)
    if length > MAX_PAYLOAD:
        raise Corrupt(f"a record of {length} bytes")
    return length, crc


def decode(header: bytes, payload: bytes) -> Record:
    """A record from its header and payload, checked against its crc."""
    length, crc = read_header(header)
    checked = header[8:] + payload
    if len(payload) != length or zlib.crc32(checked) != crc:
        raise Corrupt("checksum mismatch")
    seq, time, kind = _CHECKED.unpack_from(header, 8)
    try:
        return Record(seq, time, Kind(kind), payload)
    except ValueError:
        raise Corrupt(f"unknown record kind {kind}") from None


def request_payload(match: RuleMatch, capture: Capture) -> bytes:
    meta = {
        "rule": match.rule.name,
        "params": dict(match.params),
        "method": capture.method,
        "scheme": capture.scheme,
        "host": capture.host,
        "port": capture.port,
        "path": capture.path,
        "query": capture.query,
        "headers": capture.headers,
        "flow_id": capture.flow_id,
        "cut_from": capture.cut_from,
    }
    if capture.participant:
        meta["participant"] = capture.participant
    text = json.dumps(meta, separators=(",", ":")).encode()
    return _META_LENGTH.pack(len(text)) + text + capture.body


def read_request(record: Record, rules: dict[str, EndpointRule]) -> tuple[RuleMatch, Capture]:
    """The match and request a REQUEST record holds; Corrupt if it names no known rule."""
    payload = record.payload
    (size,) = _META_LENGTH.unpack_from(payload)
    try:
        meta = json.loads(payload[_META_LENGTH.size : _META_LENGTH.size + size])
        rule = rules[meta["rule"]]
        capture = Capture(
            method=meta["method"],
            scheme=meta["scheme"],
            host=meta["host"],
            port=meta["port"],
            path=meta["path"],
            query=meta["query"],
            headers=tuple((k, v) for k, v in meta["headers"]),
            body=payload[_META_LENGTH.size + size :],
            received_at=record.at,
            flow_id=meta["flow_id"],
            cut_from=meta.get("cut_from"),
            participant=str(meta.get("participant", "")),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise Corrupt(f"request record {record.seq}: {type(e).__name__}: {e}") from None
    return RuleMatch(rule, meta["params"]), capture
