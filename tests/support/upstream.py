"""A loopback HTTP(S) server that stands in for a platform or an upstream proxy.

It records every request exactly as received (method, target, headers, body) and answers
with a fixed body, so tests can check that the proxy passed traffic through unchanged.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.loopback import LoopbackServer

RESPONSE_BODY = b'{"upstream":"answer","n":1}'


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # the request target as sent: a path, or an absolute URL for a proxy
    headers: list[tuple[str, str]]
    body: bytes


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream-cert.pem", directory / "upstream-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Upstream(LoopbackServer):
    def __init__(self, tls_dir: Path | None = None) -> None:
        """Plain HTTP, or HTTPS with a fresh self-signed certificate written to tls_dir."""
        self.received: list[Received] = []
        self.cert: Path | None = None
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                received.append(Received(self.command, self.path, list(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream", "yes")
                self.send_header("Content-Length", str(len(RESPONSE_BODY)))
                self.end_headers()
                self.wfile.write(RESPONSE_BODY)

            do_GET = do_POST = do_PUT = do_OPTIONS = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)
        self.scheme = "http"
        if tls_dir is not None:
            self.cert, key = self_signed(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://localhost:{self.port}"
