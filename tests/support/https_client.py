"""HTTPS clients for tests and benchmarks: to 127.0.0.1 only, with the domain as SNI and as the
name the certificate must carry, verified against a given root (pebble's, or a user's CA)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import select
import socket
import ssl
import time

from agent.tls_files import CertInfo, cert_info
from tests.support.zd_load import KeepAliveClient

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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


class SecureWebSocket:
    """A minimal WebSocket client over TLS (wss) through the HTTPS front door: the handshake, the
    first text frame (the release that answered), and whether the server has closed it."""

    def __init__(self, port: int, domain: str, root_pem: bytes, path: str, timeout: float = 10) -> None:
        self.sock = tls_connect(port, domain, https_context(root_pem), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {domain}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        if " 101 " not in text.split("\r\n", 1)[0] + " ":
            raise ConnectionError(f"no WebSocket upgrade: {text.splitlines()[0]!r}")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if f"sec-websocket-accept: {accept.lower()}" not in text.lower():
            raise ConnectionError("wrong Sec-WebSocket-Accept")
        self.greeting = self._text_frame()
        self.closed_at: float | None = None

    def _fill(self) -> None:
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        self._buffer += chunk

    def _text_frame(self) -> str:
        while True:
            while len(self._buffer) < 2 or len(self._buffer) < 2 + (self._buffer[1] & 0x7F):
                self._fill()
            opcode, size = self._buffer[0] & 0x0F, self._buffer[1] & 0x7F
            payload, self._buffer = self._buffer[2:2 + size], self._buffer[2 + size:]
            if opcode == 1:
                return payload.decode()

    def is_closed(self) -> bool:
        """True once the server side closed it (reads what is pending: heartbeat frames)."""
        if self.closed_at is not None:
            return True
        while self.sock.pending() or select.select([self.sock], [], [], 0)[0]:
            try:
                chunk = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                return False
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_at = time.monotonic()
                return True
        return False

    def close(self) -> None:
        self.sock.close()
