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

    # -- TLS at run time (measured on 2.6: no reload, SNI selects the new certificate)
    def known_certs(self) -> set[str]:
        """The certificate files HAProxy holds (`show ssl cert`)."""
        out = self.command("show ssl cert")
        return {line.strip().lstrip("*") for line in out.splitlines()
                if line.strip() and not line.startswith("#")}

    def put_cert(self, path: str, bundle: str, crt_list: str | None) -> None:
        """Load (or replace) the certificate of file `path` with `bundle` (chain + key PEM, no
        blank line) and commit it; with `crt_list`, also add it to that crt-list so SNI finds it.
        The bundle travels over the admin socket only: never into an error message."""
        if path not in self.known_certs():
            out = self.command(f"new ssl cert {path}")
            if "already exists" not in out and "new empty certificate" not in out.lower():
                raise RouterError(f"haproxy refused 'new ssl cert {path}': {out.strip()}")
        out = self.command(f"set ssl cert {path} <<\n{bundle.rstrip()}\n")
        if "transaction created" not in out.lower() and "transaction updated" not in out.lower():
            self.command(f"abort ssl cert {path}")
            raise RouterError(f"haproxy refused the certificate of {path}: "
                              f"{out.strip().splitlines()[0] if out.strip() else 'no answer'}")
        out = self.command(f"commit ssl cert {path}")
        if "success" not in out.lower():
            raise RouterError(f"haproxy did not commit the certificate of {path}: {out.strip()}")
        if crt_list is not None:
            out = self.command(f"show ssl crt-list {crt_list}")
            if not any(line.split()[:1] == [path] for line in out.splitlines()):
                out = self.command(f"add ssl crt-list {crt_list} {path}")
                if "success" not in out.lower() and "inserting" not in out.lower():
                    raise RouterError(f"haproxy did not add {path} to {crt_list}: {out.strip()}")

    def set_map(self, map_file: str, key: str, value: str) -> None:
        """`key value` in the map loaded from `map_file` (replaced when present)."""
        out = self.command(f"get map {map_file} {key}")
        if "found=yes" in out.replace(" ", ""):
            self._checked(f"set map {map_file} {key} {value}")
        else:
            self._checked(f"add map {map_file} {key} {value}")

    def del_map(self, map_file: str, key: str) -> None:
        out = self.command(f"del map {map_file} {key}")
        if out.strip() and "key not found" not in out.lower():
            raise RouterError(f"haproxy refused 'del map {map_file}': {out.strip()}")

    def info(self) -> dict[str, str]:
        out = {}
        for line in self.command("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def stats(self) -> list[dict[str, str]]:
        """`show stat` as dicts keyed by the CSV header (pxname, svname, scur, status, ...)."""
        return parse_stat(self.command("show stat"))

    def server_stat(self, backend: str, server: str) -> dict[str, str]:
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise RouterError(f"haproxy has no server {backend}/{server}")


def parse_stat(text: str) -> list[dict[str, str]]:
    """A `show stat` answer (of the admin socket, or of one worker through the master CLI) as
    dicts keyed by its CSV header."""
    rows = [line for line in text.splitlines() if line]
    if not rows or not rows[0].startswith("# "):
        raise RouterError(f"unexpected 'show stat' answer: {text[:200]!r}")
    header = rows[0][2:].split(",")
    return [dict(zip(header, row.split(","))) for row in rows[1:]]
