"""What xapitap copies out of a mitmproxy flow: live (the addon) and recorded (replay)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from mitmproxy import http

from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decompress


def body_reader(raw: bytes | None, encoding: str | None, max_bytes: int) -> Callable[[], bytes]:
    """The body as body checks see it, decoded once when first asked for. Where it cannot be
    decoded within the cap (too large, corrupt, a bomb), the checks see it as sent: the
    pipeline refuses such bodies anyway."""
    cache: list[bytes] = []

    def body() -> bytes:
        if not cache:
            data = raw or b""
            try:
                cache.append(
                    decompress(data, encoding, max_bytes) if len(data) <= max_bytes else data
                )
            except DecodeError:
                cache.append(data)
        return cache[0]

    return body


def capture_of(flow: http.HTTPFlow) -> Capture | None:
    return capture_of_request(flow.request, flow.id, flow.metadata.get("proxyauth"))


def capture_of_request(req: http.Request, flow_id: str, login: object = None) -> Capture | None:
    """The request as captured (None when its body was streamed, not kept); `login`: the
    proxy login in the flow's metadata."""
    if req.raw_content is None:
        return None
    path, _, query = req.path.partition("?")
    return Capture(
        method=req.method,
        scheme=req.scheme,
        host=req.pretty_host.lower(),
        port=req.port,
        path=path,
        query=query,
        headers=tuple((k.lower(), v) for k, v in req.headers.items(multi=True)),
        body=req.raw_content,
        received_at=datetime.fromtimestamp(req.timestamp_start, UTC),
        flow_id=flow_id,
        participant=login_name(login),
    )


MAX_LOGIN_NAME = 200


def login_name(proxyauth: object) -> str:
    """The user name of mitmproxy's proxy login ((user, password) in the flow's metadata);
    the password is never read."""
    if isinstance(proxyauth, tuple | list) and proxyauth and isinstance(proxyauth[0], str):
        return proxyauth[0][:MAX_LOGIN_NAME]
    return ""
