"""TLS on the control-plane API: the rules the API server and every client of it must agree on.

The API serves server-side TLS with `api.pem` / `api-key.pem` from the platform CA, in
`$SERVERSINC_HOME/certs/` next to the agents' certificates; callers authenticate with API tokens,
not client certificates. Clients (CLI, dashboard, webhook bridge through client.connection; the
agent's enrollment) verify it with the CA's `ca.pem` (`$SERVERSINC_CA` names another file).

Plaintext is only ever chosen explicitly, on both sides, with `SERVERSINC_API_PLAINTEXT=1`
(or `serversinc-api --plaintext`), and the server logs a warning when it does.

A client given a list of replicas (client.addresses) opens one channel over several IP addresses,
so the name it checks cannot be each replica's own: it checks `TLS_NAME`, a DNS name that every
API certificate carries besides localhost, 127.0.0.1 and its hosts. Only API certificates carry
it (the agent's do not), so a list still reaches only a control plane of this platform's CA.
No gRPC here: the server and the clients build their own credentials from these bytes.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from common import pki
from common.defaults import serversinc_home

API_PAIR = "api"  # api.pem / api-key.pem
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
PLAINTEXT_ENV = "SERVERSINC_API_PLAINTEXT"
CA_ENV = "SERVERSINC_CA"
TLS_NAME = "serversinc-api"
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class ApiTlsError(Exception):
    """TLS for the API cannot be set up; the message says what to do."""


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def plaintext_requested(environ=None) -> bool:
    """$SERVERSINC_API_PLAINTEXT is set to a true value (1, true, yes, on)."""
    environ = os.environ if environ is None else environ
    return truthy(environ.get(PLAINTEXT_ENV))


def certs_dir(environ=None) -> Path:
    return serversinc_home(environ) / "certs"


def ca_path(environ=None) -> Path:
    """The CA certificate clients verify the API with: $SERVERSINC_CA, else the home's certs/ca.pem."""
    environ = os.environ if environ is None else environ
    return Path(environ[CA_ENV]) if environ.get(CA_ENV) else certs_dir(environ) / CA_FILE


def read_ca(path: Path) -> bytes:
    """The CA file's bytes; ApiTlsError naming the file and the ways out when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ApiTlsError(
            f"cannot read the CA certificate that verifies the control plane, {path} "
            f"({err.strerror or err}): run scripts/run.sh (it makes it), set {CA_ENV} to the platform's "
            f"ca.pem, or set {PLAINTEXT_ENV}=1 for a control plane that serves plaintext") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ApiTlsError(f"{path} holds no PEM certificate (set {CA_ENV} to the platform's ca.pem)")
    return data


def api_hosts(extra=()) -> list[str]:
    """The names an API certificate is valid for: TLS_NAME, localhost, 127.0.0.1 and `extra`
    (wildcard listen addresses left out: nobody dials them)."""
    hosts = [TLS_NAME, *pki.DEFAULT_HOSTS]
    for host in extra:
        host = host.strip().strip("[]")
        if host not in _WILDCARDS and host not in hosts:
            hosts.append(host)
    return hosts


def listen_host(host: str) -> str:
    """A listen host as a certificate name (brackets off an IPv6 literal)."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def ensure_api_pair(folder: Path, hosts=()) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of the API in `folder`, issued from the CA there when missing.

    Issuing it here does what scripts/certs.py would (same CA, same names), so a home made before
    the API had TLS, or a replica on a new host, starts without a manual step. Without the CA's key
    there is nothing to issue it with: ApiTlsError says how to make or copy one."""
    folder = Path(folder)
    if not pki.exists(folder, API_PAIR):
        if not pki.exists(folder, "ca"):
            raise ApiTlsError(
                f"no API certificate in {folder} ({API_PAIR}.pem, {API_PAIR}-key.pem) and no CA there to "
                f"issue one: run scripts/certs.py --out {folder} (or copy api.pem and api-key.pem from "
                f"the machine that holds ca-key.pem), or start with --plaintext / {PLAINTEXT_ENV}=1 to "
                "serve without TLS")
        ca = pki.load_pair(folder, "ca")
        pki.write_pair(folder, API_PAIR, pki.make_leaf(ca, TLS_NAME, usage=pki.SERVER, hosts=api_hosts(hosts)))
    return (folder / f"{API_PAIR}.pem").read_bytes(), (folder / f"{API_PAIR}-key.pem").read_bytes()
