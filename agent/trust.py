"""Agent trust: mutual TLS credentials, the agent secret (with its .env bootstrap) and the
auth interceptor that requires it, plus the optional peer-address allowlist.

Only the control plane may call the agent: it must present a client certificate issued by the
CA in the certs folder (checked by gRPC in the TLS handshake, before any call), and every call
carries `authorization: Bearer <agent secret>` (checked by `AuthInterceptor`, in constant time,
before any handler runs). The secret and certificates are never logged.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from pathlib import Path

import grpc

from common.agent_secret import (  # noqa: F401 - the agent's names for them
    MIN_SECRET_LENGTH, SECRET_ENV, SecretFileError, read_env_secret)
from common.agent_secret import load_or_create_secret as _load_or_create
from common.grpc_auth import BearerInterceptor, same_secret

log = logging.getLogger(__name__)

CERT_FILES = ("ca.pem", "agent.pem", "agent-key.pem")
# Reachable without the secret (and from any address): liveness for run scripts and probes.
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class TrustError(RuntimeError):
    """The agent cannot start safely (no certificates, bad secret, bad allowlist)."""


# ---- transport -------------------------------------------------------------------------------
def server_tls(certs_dir: Path) -> grpc.ServerCredentials:
    """Mutual TLS from `certs_dir`: our pair (agent.pem, agent-key.pem) and the CA (ca.pem) every
    client certificate must chain to; clients without one are refused in the handshake."""
    ca, cert, key = read_certs(certs_dir)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def read_certs(certs_dir: Path) -> tuple[bytes, bytes, bytes]:
    """(ca.pem, agent.pem, agent-key.pem) of `certs_dir`; TrustError saying what is missing."""
    certs_dir = Path(certs_dir)
    missing = [name for name in CERT_FILES if not (certs_dir / name).is_file()]
    if missing:
        if len(missing) == len(CERT_FILES):
            what = f"no certificates in {certs_dir}"
        else:
            what = f"incomplete certificates in {certs_dir} (missing {', '.join(missing)})"
        raise TrustError(f"{what}: run scripts/certs.py --out {certs_dir}, or start the agent "
                         "with the join command 'serversinc servers add' prints (it fetches them), "
                         "or pass --insecure for a plaintext test agent")
    try:
        ca, cert, key = ((certs_dir / name).read_bytes() for name in CERT_FILES)
    except OSError as exc:
        raise TrustError(f"cannot read certificates in {certs_dir}: {exc.strerror}") from None
    return ca, cert, key


# ---- the secret ------------------------------------------------------------------------------
def resolve_secret(explicit: str, env_file: Path) -> str:
    """`explicit` (config or TUGBOAT_SECRET_KEY; never written anywhere), else the .env one."""
    if explicit:
        if len(explicit) < MIN_SECRET_LENGTH:
            raise TrustError(f"the agent secret must be at least {MIN_SECRET_LENGTH} characters")
        return explicit
    return load_or_create_secret(env_file)


def load_or_create_secret(env_file: Path) -> str:
    """`common.agent_secret.load_or_create_secret`, failing as the agent's other start checks do."""
    try:
        return _load_or_create(env_file)
    except SecretFileError as exc:
        raise TrustError(str(exc)) from None


# ---- allowlist -------------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    """"127.0.0.1,10.0.0.0/8" (or a list of such items) -> networks; empty means allow all."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else [i for v in value for i in v.split(",")]
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise TrustError(f"invalid allowlist entry {item!r}: use IP addresses or CIDRs "
                             "like 10.0.0.0/8") from None
    return tuple(networks)


def peer_ip(peer: str):
    """`ipv4:1.2.3.4:5`, `ipv6:[::1]:5` (gRPC's context.peer()) -> an ip_address, else None."""
    kind, _, rest = (peer or "").partition(":")
    host = rest.rpartition(":")[0]
    if kind == "ipv6":
        host = host.strip("[]").split("%", 1)[0]
    elif kind != "ipv4":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def peer_allowed(peer: str, allow: tuple[Network, ...]) -> bool:
    if not allow:
        return True
    address = peer_ip(peer)
    return address is not None and any(address in network for network in allow
                                       if network.version == address.version)


# ---- the interceptor -------------------------------------------------------------------------
class AuthInterceptor(BearerInterceptor):
    """Requires the agent secret on every call except the health check, and (when an allowlist
    is set) a peer address on it; refusals abort before the servicer method runs.

    Interceptors do not see the peer address, so the allowlist check runs in the check put in
    front of the real method (common.grpc_auth.checked): PERMISSION_DENIED first (a stranger
    learns nothing about the secret), then UNAUTHENTICATED.
    """

    open_methods = OPEN_METHODS
    log = logging.getLogger(__name__)

    def __init__(self, secret: str, allow: tuple[Network, ...] = ()):
        if len(secret) < MIN_SECRET_LENGTH:
            raise TrustError(f"the agent secret must be at least {MIN_SECRET_LENGTH} characters")
        self._secret = secret
        self._allow = allow

    def __repr__(self) -> str:  # never show the secret
        return f"AuthInterceptor(allow={[str(n) for n in self._allow]})"

    def refusal(self, credential: str) -> str | None:
        if same_secret(credential, self._secret):
            return None
        return "missing or wrong agent secret: send 'authorization: Bearer <agent secret>'"

    def needs_check(self, refused: str | None) -> bool:
        return refused is not None or bool(self._allow)

    def check(self, method: str, context, refused: str | None):
        if not peer_allowed(context.peer(), self._allow):
            return self.denied(method, context, grpc.StatusCode.PERMISSION_DENIED,
                               "this address may not call the agent (not on its allowlist)")
        return super().check(method, context, refused)
