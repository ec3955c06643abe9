"""A sample app with long-lived connections, for the tests and benchmarks of WebSockets and
server-sent events through the front door and through deploys.

No Go, Node or Python runs in a `FROM scratch` image, and busybox `nc -ll -e` serves one
connection at a time (measured), so the app is busybox `httpd` (a process per connection) with
shell CGI scripts:
- `/cgi-bin/ws`: a WebSocket endpoint. httpd passes every request header to CGI as HTTP_* and
  sends a CGI answer that starts with "HTTP/" as it is, so the script answers `101 Switching
  Protocols` with the Sec-WebSocket-Accept (sha1sum | xxd -r -p | base64), sends one text frame
  "release <version>", then an unsolicited pong frame every second: httpd never reads a GET's
  client side, so a write is how the script learns that the connection is gone (it exits within
  a second of the close).
- `/cgi-bin/events`: an event stream (text/event-stream) of `?n=N` events (default 5). After
  each event the script waits on a FIFO that `/cgi-bin/next` writes to: the next event is
  written only when the client has asked for it, so a client that receives each event before
  asking for the next proves that nothing between them buffers the stream.
- `/` answers "ws app <version>" (the health check).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import select
import socket
import ssl
import time
from pathlib import Path

import git

from tests.support.sample_app import commit_files, make_sample_repo

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATH = "/cgi-bin/ws"

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
COPY start.sh /start.sh
COPY ws /www/cgi-bin/ws
COPY events /www/cgi-bin/events
COPY next /www/cgi-bin/next
COPY index.html /www/index.html
RUN ["/bin/chmod","755","/start.sh","/www/cgi-bin/ws","/www/cgi-bin/events","/www/cgi-bin/next"]
EXPOSE 8080
CMD ["/bin/sh","/start.sh"]
"""

START_SH = """#!/bin/sh
mkdir -p /tmp
mkfifo /tmp/sse-next
echo "listening on 8080"
exec httpd -f -p 8080 -h /www
"""

WS_CGI = """#!/bin/sh
key="$HTTP_SEC_WEBSOCKET_KEY"
if [ -z "$key" ]; then
  printf 'Status: 400 Bad Request\\r\\nContent-Type: text/plain\\r\\n\\r\\nnot a WebSocket request\\n'
  exit 0
fi
accept=$(printf '%s' "${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11" | sha1sum | cut -d' ' -f1 | xxd -r -p | base64)
printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: %s\\r\\n\\r\\n' "$accept"
msg="release {version}"
printf "\\\\x81\\\\x$(printf %02x ${#msg})%s" "$msg"
while printf '\\x8a\\x00'; do sleep 1; done
"""

EVENTS_CGI = """#!/bin/sh
# The status line and a chunked body of our own: an answer without a length is ended by a
# close, and HAProxy then shuts its side of the connection to httpd, which httpd takes for the
# client leaving and kills the script (measured).
count=${QUERY_STRING#n=}
case "$count" in ''|*[!0-9]*) count=5;; esac
nl='
'
printf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/event-stream\\r\\nCache-Control: no-cache\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n'
i=1
while [ "$i" -le "$count" ]; do
  event="id: $i${nl}data: event $i of release {version}${nl}${nl}"
  printf '%x\\r\\n%s\\r\\n' "${#event}" "$event"
  [ "$i" -eq "$count" ] && break
  # An EOF without a line is the previous writer closing late (it was still open when this
  # read opened the FIFO): open it again and wait for the next one.
  until read -r _ < /tmp/sse-next; do :; done
  i=$((i+1))
done
printf '0\\r\\n\\r\\n'
"""

NEXT_CGI = """#!/bin/sh
echo next > /tmp/sse-next
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
"""


def greeting(version: str) -> str:
    return f"release {version}"


def make_ws_repo(path: str | Path, version: str = "v1") -> git.Repo:
    repo = make_sample_repo(path, version)
    commit_ws_version(repo, version)
    return repo


def commit_ws_version(repo: git.Repo, version: str) -> str:
    return commit_files(repo, {
        "Dockerfile": DOCKERFILE, "start.sh": START_SH,
        "ws": WS_CGI.replace("{version}", version),
        "events": EVENTS_CGI.replace("{version}", version), "next": NEXT_CGI,
        "index.html": f"ws app {version}\n"}, f"ws app {version}")


class WebSocket:
    """A minimal WebSocket client on a raw socket (through the front door, 127.0.0.1 only): the
    handshake, the first text frame (the release that answered), and whether the server closed
    it. Enough to hold many connections open and watch them, nothing more."""

    def __init__(self, front_door: str, host: str, path: str = WS_PATH, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None):
        """`ssl_context`: speak TLS to an HTTPS front door (SNI is `host`)."""
        address, _, port = front_door.rpartition(":")
        assert address == "127.0.0.1", front_door
        self.sock = socket.create_connection((address, int(port)), timeout=timeout)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host.split(":")[0])
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status = head.split("\r\n", 1)[0]
        if " 101 " not in status + " ":
            raise ConnectionError(f"no WebSocket upgrade: {status!r}")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if f"sec-websocket-accept: {accept.lower()}" not in head.lower():
            raise ConnectionError(f"wrong Sec-WebSocket-Accept in {head!r}")
        self.greeting = self._text_frame()
        self.closed_at: float | None = None

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _text_frame(self) -> str:
        while True:
            while len(self._buffer) < 2 or len(self._buffer) < 2 + (self._buffer[1] & 0x7F):
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed before the first frame")
                self._buffer += chunk
            opcode, size = self._buffer[0] & 0x0F, self._buffer[1] & 0x7F
            payload, self._buffer = self._buffer[2:2 + size], self._buffer[2 + size:]
            if opcode == 1:
                return payload.decode()

    def is_closed(self) -> bool:
        """True once the server side has closed (reads what is pending: heartbeat frames)."""
        if self.closed_at is not None:
            return True
        pending = getattr(self.sock, "pending", lambda: 0)
        while pending() or select.select([self.sock], [], [], 0)[0]:
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


def event_stream(front_door: str, host: str, count: int, timeout: float = 10.0):
    """Read an event stream of `count` events through the front door, asking for each next one
    only once the previous has arrived (`/cgi-bin/next`). Yields each event's data line as it
    comes; a stream buffered anywhere on the way stalls and fails with a timeout."""
    address, _, port = front_door.rpartition(":")
    assert address == "127.0.0.1", front_door
    sock = socket.create_connection((address, int(port)), timeout=timeout)
    try:
        sock.sendall(f"GET /cgi-bin/events?n={count} HTTP/1.1\r\nHost: {host}\r\n"
                     "Accept: text/event-stream\r\nAccept-Encoding: gzip\r\n\r\n".encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += _recv(sock)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        yield head.decode("latin-1")
        for index in range(count):
            # Chunked or not, an event ends with a blank line; data lines are found by prefix.
            while b"\n\n" not in buffer:
                buffer += _recv(sock)
            event, _, buffer = buffer.partition(b"\n\n")
            data = [line for line in event.decode().splitlines() if line.startswith("data: ")]
            yield data[-1][len("data: "):]
            if index + 1 < count:
                _ask_next(front_door, host)
    finally:
        sock.close()


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(4096)
    if not chunk:
        raise ConnectionError("event stream closed early")
    return chunk


def _ask_next(front_door: str, host: str) -> None:
    address, _, port = front_door.rpartition(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=10)
    try:
        conn.request("GET", "/cgi-bin/next", headers={"Host": host})
        assert conn.getresponse().status == 200
    finally:
        conn.close()
