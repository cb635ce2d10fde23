"""Where the dashboard listens, which destinations are it (the proxy refuses those), and who
may read it."""

from __future__ import annotations

import socket

import pytest

from xapitap.dashboard.address import Destinations
from xapitap.dashboard.address import Listen
from xapitap.dashboard.address import parse_listen
from xapitap.dashboard.auth import Auth
from xapitap.dashboard.auth import check_token_option
from xapitap.dashboard.auth import same_origin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8082", Listen("127.0.0.1", 8082)),
        ("localhost:0", Listen("localhost", 0)),
        ("[::1]:9000", Listen("::1", 9000)),
        (" 0.0.0.0:8082 ", Listen("0.0.0.0", 8082)),
        ("OFF", None),
    ],
)
def test_listen_addresses(text: str, expected: Listen | None) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8082", "127.0.0.1", "127.0.0.1:http", "h:70000", "::1:80", ""])
def test_bad_listen_addresses_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="xapi_dashboard"):
        parse_listen(text)


def test_loopback_and_the_url_to_open() -> None:
    assert Listen("127.0.0.1", 1).loopback and Listen("::1", 1).loopback
    assert Listen("localhost", 1).loopback
    assert not Listen("0.0.0.0", 1).loopback and not Listen("192.0.2.7", 1).loopback
    assert Listen("::1", 8082).url() == "http://[::1]:8082/"
    assert Listen("0.0.0.0", 0).url(4242) == "http://127.0.0.1:4242/"


def test_destinations_on_loopback() -> None:
    at = Destinations(Listen("127.0.0.1", 0), 8082)
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST.", "app.localhost", "::1"):
        assert at.named(host, 8082), host
    for host in ("0.0.0.0", "[::]", "::ffff:127.0.0.1"):
        assert at.named(host, 8082), host  # these reach loopback too
    assert not at.named("127.0.0.1", 8080)  # another port: not the dashboard
    assert not at.named("example.org", 8082)  # a name: resolved by the caller
    assert at.resolved(["93.184.216.34", "127.0.0.1"])
    assert not at.resolved(["93.184.216.34"])


def test_destinations_when_listening_everywhere_include_this_machine() -> None:
    at = Destinations(Listen("0.0.0.0", 0), 9999)
    assert at.named(socket.gethostname(), 9999)
    own = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    assert all(at.named(str(address), 9999) for address in own)
    assert not at.named("192.0.2.1", 9999)


def test_token_option() -> None:
    assert check_token_option("") == ""
    assert check_token_option(" a-long-enough-token ") == "a-long-enough-token"
    for bad in ("short", "x" * 15, "é" * 20, "tab\tinside-a-long-token"):
        with pytest.raises(ValueError, match="at least 16"):
            check_token_option(bad)


def test_auth_by_token_bearer_and_cookie() -> None:
    auth = Auth()
    other = Auth()
    assert len(auth.token) >= 24 and auth.token != other.token  # random per start
    assert auth.token_ok(auth.token) and not auth.token_ok(other.token) and not auth.token_ok(None)
    assert auth.bearer_ok(f"Bearer {auth.token}") and auth.bearer_ok(f"bearer {auth.token}")
    assert not auth.bearer_ok(f"Basic {auth.token}") and not auth.bearer_ok(None)
    # The cookie is derived from the token (a set token keeps cookies across restarts) and is
    # not the token itself.
    assert auth.cookie_ok(auth.cookie_value) and not auth.cookie_ok(other.cookie_value)
    assert auth.cookie_value != auth.token
    assert Auth("a-long-enough-token").cookie_value == Auth("a-long-enough-token").cookie_value


def test_same_origin() -> None:
    assert same_origin("127.0.0.1:8082", None, "same-origin")
    assert same_origin("127.0.0.1:8082", None, "none")  # typed in the address bar
    assert not same_origin("127.0.0.1:8082", "http://127.0.0.1:8082", "cross-site")
    assert not same_origin("127.0.0.1:8082", None, "same-site")
    assert same_origin("127.0.0.1:8082", "http://127.0.0.1:8082", None)
    assert not same_origin("127.0.0.1:8082", "http://evil.example", None)
    assert not same_origin("127.0.0.1:8082", "null", None)
    assert not same_origin("127.0.0.1:8082", None, None)
