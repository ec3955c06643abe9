"""HAProxy's runtime API over its admin unix socket: one command per connection."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.router import RouterError


class RuntimeAPI:
    """The commands the router needs: set a server's address and state, read stats and info."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def _checked(self, command: str) -> str:
        """HAProxy answers refusals as text on a successful connection: spot them."""
        out = self.command(command)
        low = out.lower()
        if "no such" in low or "unknown command" in low or "require" in low or "invalid" in low \
                or "permission denied" in low:
            raise RouterError(f"haproxy refused {command!r}: {out.strip()}")
        return out

    def set_server_addr(self, backend: str, server: str, host: str, port: int) -> None:
        self._checked(f"set server {backend}/{server} addr {host} port {port}")

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        self._checked(f"set server {backend}/{server} state {state}")

    def info(self) -> dict[str, str]:
        out = {}
        for line in self.command("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def stats(self) -> list[dict[str, str]]:
        """`show stat` as dicts keyed by the CSV header (pxname, svname, scur, status, ...)."""
        text = self.command("show stat")
        rows = [line for line in text.splitlines() if line]
        if not rows or not rows[0].startswith("# "):
            raise RouterError(f"unexpected 'show stat' answer: {text[:200]!r}")
        header = rows[0][2:].split(",")
        return [dict(zip(header, row.split(","))) for row in rows[1:]]

    def server_stat(self, backend: str, server: str) -> dict[str, str]:
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise RouterError(f"haproxy has no server {backend}/{server}")
