"""Where the dashboard listens, and which destinations are the dashboard.

A request that reaches the dashboard *through the proxy* must be refused (mitmweb's
CVE-2025-23217): the proxy would make the connection from loopback, and in upstream mode the
next proxy would. So the proxy refuses any request whose destination is the dashboard's port
on an address that reaches it: any loopback address, `localhost` and its subdomains, the
listen host, and this machine's own names and addresses when it listens on all of them."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT = "127.0.0.1:8082"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int  # 0: any free port

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port or self.port}/"


def parse_listen(text: str) -> Listen | None:
    """`HOST:PORT` (`[v6]:PORT` for IPv6), or `off` (None); ValueError saying what is wrong."""
    text = text.strip()
    if text.lower() == "off":
        return None
    host, sep, port_text = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"xapi_dashboard must be HOST:PORT or off, not {text!r}")
    if ":" in host and not bracketed:
        raise ValueError(f"xapi_dashboard: write an IPv6 address as [ADDRESS]:PORT, not {text!r}")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"xapi_dashboard: {host!r} is not an IPv6 address") from None
    return Listen(host.lower(), int(port_text))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class Destinations:
    """Which (host, port) destinations are the dashboard listening at `listen` on `port`."""

    def __init__(self, listen: Listen, port: int) -> None:
        self.port = port
        self._names = {"localhost", listen.host}
        self._addresses = {a for a in (_ip(listen.host),) if a is not None}
        self._everywhere = any(a.is_unspecified for a in self._addresses)
        if self._everywhere or not listen.loopback:
            self._names |= _own_names()
            self._addresses |= {a for a in map(_ip, _own_addresses()) if a is not None}

    def named(self, host: str, port: int) -> bool:
        """Whether `host:port` is the dashboard, by the name or address as written."""
        if port != self.port:
            return False
        host = host.lower().rstrip(".")
        if host in self._names or host.endswith(".localhost"):
            return True
        address = _ip(host)
        return address is not None and self._is_ours(address)

    def resolved(self, addresses: Iterable[str]) -> bool:
        """Whether any of the addresses a name resolved to (with the dashboard's port) is
        the dashboard."""
        return any((a := _ip(text)) is not None and self._is_ours(a) for text in addresses)

    def _is_ours(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        # 0.0.0.0 and :: connect to this machine, as loopback does.
        return address.is_loopback or address.is_unspecified or address in self._addresses


def _own_names() -> set[str]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    return names


def _own_addresses() -> set[str]:
    try:
        found = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return set()
    return {str(info[4][0]) for info in found}
