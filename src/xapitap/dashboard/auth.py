"""Who may read the dashboard: whoever holds its token.

The token is random per start unless the user sets one. `?token=` on the page is exchanged
for a cookie (HttpOnly, SameSite=Strict) whose value is derived from the token, so the token
itself never sits in a cookie or in the address bar after the first visit; scripts send
`Authorization: Bearer <token>`."""

from __future__ import annotations

import hashlib
import hmac
import secrets

MIN_TOKEN_LENGTH = 16


def check_token_option(token: str) -> str:
    """A token the user set, checked (ValueError); empty: a random one per start."""
    token = token.strip()
    if token and (len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable()):
        raise ValueError(
            f"xapi_dashboard_token must be at least {MIN_TOKEN_LENGTH} printable ASCII "
            "characters (or empty for a random one per start)"
        )
    return token


class Auth:
    def __init__(self, token: str = "") -> None:
        self.token = token or secrets.token_urlsafe(24)
        self._cookie = hmac.new(self.token.encode(), b"xapitap dashboard cookie", hashlib.sha256)

    @property
    def cookie_value(self) -> str:
        return self._cookie.hexdigest()

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer_ok(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(given.strip())

    def cookie_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.cookie_value.encode())


def same_origin(host: str | None, origin: str | None, fetch_site: str | None) -> bool:
    """Whether a browser's state-changing request comes from the dashboard's own page.

    Browsers send `Sec-Fetch-Site`; older ones only `Origin`, which must then name the host
    the request was sent to."""
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    if not origin or not host:
        return False
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and rest.rstrip("/") == host
