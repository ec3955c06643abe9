"""Server enrollment: a one-time, expiring join token, traded by the agent for its registration.

The control plane stores only the join token's hash and the agent's secret encrypted; a used or
expired token is refused. It also keeps when each agent last answered (`seen`), so a server that is
down shows since when.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from services.apps import repository as repo
from services.core import validation as v
from services.core.errors import (FailedPrecondition, InvalidArgument, JoinTokenInvalid, ServerAlreadyExists,
                                  ServerNotFound)
from services.db.models import Server, utcnow
from services.db.session import Database
from services.security import tokens
from services.security.secretbox import SecretBox
from services.servers.issuer import AgentIssuer

MIN_AGENT_SECRET = 32
# A server's last_seen_at is written at most this often by one process. People read it as
# "3 min ago", and the health monitor reaches every server with an app each round (seconds):
# a write per answer would be a write per server per round for nothing anyone sees.
SEEN_WRITE_SECONDS = 15.0


class ServerService:
    def __init__(self, db: Database, box: SecretBox, issuer: AgentIssuer | None = None):
        self.db = db
        self.box = box
        self.issuer = issuer  # signs agents' CSRs (None: this control plane has no CA)
        self._seen_lock = threading.Lock()
        self._seen_written: dict[str, float] = {}  # server name -> time.monotonic() of the last write

    def seen(self, names: Iterable[str], when: datetime | None = None) -> None:
        """Records that these servers' agents answered at `when` (now): at most one write per
        server every SEEN_WRITE_SECONDS from this process, all of them in one statement."""
        now, when = time.monotonic(), when or utcnow()
        with self._seen_lock:
            due = [n for n in names
                   if n not in self._seen_written or now - self._seen_written[n] >= SEEN_WRITE_SECONDS]
        if not due:
            return
        with self.db.session() as s:
            repo.mark_servers_seen(s, due, when)
        with self._seen_lock:
            self._seen_written.update(dict.fromkeys(due, now))

    def create(self, name: str, address: str, ttl_seconds: int = 3600) -> tuple[Server, str]:
        v.resource_name(name, "server")
        _address(address)
        if not 0 <= ttl_seconds <= 7 * 24 * 3600:
            raise InvalidArgument("join token lifetime must be 0 (default, 1 hour) to 7 days", field="join_token_ttl")
        secret = tokens.new_secret("join")
        with self.db.session() as s:
            if repo.get_server(s, name):
                raise ServerAlreadyExists(f"server {name!r} already exists")
            server = Server(name=name, address=address, created_at=utcnow())
            _issue(server, secret, ttl_seconds or 3600)
            s.add(server)
        return server, secret

    def new_join_token(self, name: str, ttl_seconds: int = 3600) -> str:
        """A fresh join token for an existing server (re-enrolment after its agent lost its secret)."""
        secret = tokens.new_secret("join")
        with self.db.session() as s:
            server = repo.get_server(s, name)
            if server is None:
                raise ServerNotFound(f"server {name!r} not found")
            _issue(server, secret, ttl_seconds)
        return secret

    def join_token_usable(self, name: str, join_token: str) -> bool:
        """True when `join_token` is the server's current token, unused and not expired."""
        with self.db.read() as s:
            server = repo.get_server(s, name)
        return bool(server and join_token and server.join_token_hash
                    and tokens.matches(join_token, server.join_token_hash)
                    and server.join_token_used_at is None
                    and not (server.join_token_expires_at and server.join_token_expires_at < utcnow()))

    def register(self, join_token: str, agent_secret: str, address: str = "", csr_pem: str = "",
                 issued: list | None = None) -> Server:
        """Trades the join token for the registration. With `csr_pem` the agent's certificate is
        issued too (services.servers.issuer) and appended to `issued`; a CSR that cannot be signed
        fails before the token is marked used, so the agent may try again with it."""
        if len(agent_secret) < MIN_AGENT_SECRET:
            raise InvalidArgument(f"agent secret must be at least {MIN_AGENT_SECRET} characters")
        if address:
            _address(address)
        if csr_pem and self.issuer is None:
            raise FailedPrecondition("this control plane issues no agent certificates (no CA)",
                                     reason="CERTIFICATE_ISSUE_FAILED")
        digest = tokens.digest(join_token or "")
        with self.db.session() as s:
            server = repo.server_by_join_token(s, digest)
            # One message for every refusal: a caller learns nothing about which tokens exist.
            refused = JoinTokenInvalid("join token is unknown, used or expired: create a new one with 'serversinc servers add'")
            if server is None or not tokens.matches(join_token, server.join_token_hash):
                raise refused
            now = utcnow()
            if server.join_token_used_at is not None or (server.join_token_expires_at and server.join_token_expires_at < now):
                raise refused
            if csr_pem:
                cert = self.issuer.sign(csr_pem, server.name, address or server.address)
                server.cert_serial, server.cert_not_after = cert.serial, cert.not_after
                if issued is not None:
                    issued.append(cert)
            server.join_token_used_at = now
            server.registered_at = now
            server.agent_secret = self.box.encrypt(agent_secret)
            if address:
                server.address = address
        return server

    def record_certificate(self, name: str, serial: str, not_after: datetime) -> Server:
        """Stores the serial and expiry of the certificate just issued to the server's agent."""
        with self.db.session() as s:
            server = repo.get_server(s, name)
            if server is None:
                raise ServerNotFound(f"server {name!r} not found")
            server.cert_serial, server.cert_not_after = serial, not_after
        return server

    def agent_secret(self, server: Server) -> str:
        return self.box.decrypt(server.agent_secret) if server.agent_secret else ""


def _issue(server: Server, secret: str, ttl_seconds: int) -> None:
    server.join_token_hash = tokens.digest(secret)
    server.join_token_expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    server.join_token_used_at = None


def _address(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c.isspace() for c in address):
        raise InvalidArgument(f"server address {address!r} is not host:port")
    return address
