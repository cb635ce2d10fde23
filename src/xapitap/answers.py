"""Local answers: the proxy replies to matched analytics requests itself (opt-in)."""

from __future__ import annotations

from mitmproxy import http

MARKER = ("X-Xapitap", "answered-locally")


def _cors(request: http.Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {MARKER[0]: MARKER[1]}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Vary"] = "Origin"
    return headers


def answer(request: http.Request) -> http.Response:
    headers = _cors(request) | {"Content-Type": "application/json"}
    return http.Response.make(200, b'{"success":true}', headers)


def answer_preflight(request: http.Request) -> http.Response:
    headers = _cors(request)
    headers["Access-Control-Allow-Methods"] = request.headers.get(
        "access-control-request-method", "POST"
    )
    if wanted := request.headers.get("access-control-request-headers"):
        headers["Access-Control-Allow-Headers"] = wanted
    headers["Access-Control-Max-Age"] = "600"
    return http.Response.make(204, b"", headers)
