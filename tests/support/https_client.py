"""HTTPS clients for tests and benchmarks: to 127.0.0.1 only, with the domain as SNI and as the
name the certificate must carry, verified against a given root (pebble's, or a user's CA)."""

from __future__ import annotations

import http.client
import socket
import ssl

from agent.tls_files import CertInfo, cert_info
from tests.support.ws_app import WebSocket
from tests.support.zd_load import KeepAliveClient


def https_context(root_pem: bytes | None, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """Verifies against `root_pem`; None: no verification (to look at an untrusted certificate)."""
    if root_pem is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=root_pem.decode())
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_connect(port: int, domain: str, context: ssl.SSLContext, timeout: float = 5) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=domain)
    except BaseException:
        raw.close()
        raise


def served_cert(port: int, domain: str, root_pem: bytes | None = None) -> CertInfo:
    """The certificate the front door presents for SNI `domain` (verified when `root_pem`)."""
    with tls_connect(port, domain, https_context(root_pem)) as tls:
        return cert_info(ssl.DER_cert_to_PEM_cert(tls.getpeercert(True)).encode())


class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with `domain` as SNI and as the name the certificate must have."""

    def __init__(self, port: int, domain: str, context: ssl.SSLContext, timeout: float = 5) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout, context=context)
        self.domain = domain

    def connect(self) -> None:
        self.sock = tls_connect(self.port, self.domain, self._context, self.timeout)


class HttpsKeepAliveClient(KeepAliveClient):
    """`KeepAliveClient` over HTTPS: one kept-alive TLS connection, verified against `root_pem`."""

    def __init__(self, port: int, domain: str, root_pem: bytes, **kwargs) -> None:
        super().__init__(f"127.0.0.1:{port}", domain, **kwargs)
        self.context = https_context(root_pem)
        self.domain = domain

    def _connect(self) -> http.client.HTTPConnection:
        self.connections += 1
        return PinnedHTTPS(self.port, self.domain, self.context, timeout=self.timeout)


def secure_websocket(port: int, domain: str, root_pem: bytes, path: str, timeout: float = 10) -> WebSocket:
    """The WebSocket client of `ws_app` over TLS (wss) through the HTTPS front door, verified
    against `root_pem`, SNI `domain`."""
    return WebSocket(f"127.0.0.1:{port}", f"{domain}:{port}", path, timeout=timeout,
                     ssl_context=https_context(root_pem))
