"""Enrollment: trade a one-time join token for this agent's registration with the control plane.

`TUGBOAT_JOIN_TOKEN=TOKEN tugboat --listen ADDR --join API --ca-hash sha256:…` (the join_command
CreateServer prints: the token in the environment, never in the process arguments) calls
`ServerService.RegisterServer(join_token, agent_secret, address)` once the agent serves. The call
goes over TLS, verifying the API's certificate with the agent's own `ca.pem` (the platform CA it
already trusts for mutual TLS), because it carries the token and the secret; plaintext only when
`SERVERSINC_API_PLAINTEXT=1` asks for it (common.api_tls). Neither the token nor the secret is
ever logged.

On a machine with no certificates, `--ca-hash sha256:...` (the CA fingerprint the join command
carries) enrolls before the agent serves (`enroll_with_csr`), as `kubeadm join
--discovery-token-ca-cert-hash` does:
1. a TLS handshake with the API that verifies nothing and sends nothing reads the chain the API
   presents (its certificate and the platform CA, services.api.server);
2. the CA in that chain must have the fingerprint the command names, and the API's certificate
   must be issued by it; otherwise the agent stops with a message saying which check failed, and
   the token was never sent;
3. only then, over TLS verified with that CA alone, RegisterServer carries the token, the secret,
   the address and a CSR for a key made here (it never leaves this machine);
4. the certificate it returns (for the key, from that CA) and the CA are written to the certs
   folder (the key 0600), and the agent serves mutual TLS with them.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from enum import Enum
from pathlib import Path

import grpc
from cryptography import x509

from common import pki
from common.api_tls import TLS_NAME, ApiTlsError, ca_path, plaintext_requested, read_ca

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class Outcome(str, Enum):
    REGISTERED = "registered"
    REFUSED = "refused"          # token unknown, used or expired (FAILED_PRECONDITION)
    FAILED = "failed"            # anything else (unreachable API, invalid argument, ...)


def advertised_address(host: str, port: int) -> str:
    """The address to give the control plane, or "" (keep what CreateServer was given) when we
    listen on a wildcard address that nobody can dial."""
    if host in _WILDCARDS:
        return ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def api_channel(api: str, ca_file: Path | None = None) -> grpc.Channel:
    """A channel to the control plane at `api`: TLS verified with `ca_file` (default: the clients'
    CA, $SERVERSINC_CA or the home's certs/ca.pem), or plaintext when
    SERVERSINC_API_PLAINTEXT asks for it. ApiTlsError when the CA cannot be read."""
    if plaintext_requested():
        log.warning("registering with %s over PLAINTEXT gRPC (SERVERSINC_API_PLAINTEXT): the join token "
                    "and this agent's secret cross the network in clear", api)
        return grpc.insecure_channel(api)
    return grpc.secure_channel(api, grpc.ssl_channel_credentials(root_certificates=read_ca(ca_file or ca_path())))


def _register_until(stub, request, deadline: float):
    """RegisterServer, called again while the API is unreachable or slow (it may still be
    starting) until `deadline` (time.monotonic()); any other error, or one past the deadline, is
    raised as the grpc.RpcError it is."""
    delay = 0.2
    while True:
        try:
            timeout = max(1.0, min(10.0, deadline - time.monotonic()))
            return stub.RegisterServer(request, timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def register(api: str, join_token: str, secret: str, address: str, *, ca_file: Path | None = None,
             retry_seconds: float = RETRY_SECONDS, channel: grpc.Channel | None = None) -> Outcome:
    """Call RegisterServer, retrying while the API is unreachable (it may still be starting).
    Without `channel`, one is opened to `api` with api_channel(api, ca_file)."""
    from serversinc.v1 import server_service_pb2, server_service_pb2_grpc

    own = channel is None
    if own:
        try:
            channel = api_channel(api, ca_file)
        except ApiTlsError as err:
            log.error("could not register with the control plane at %s: %s; serving anyway", api, err)
            return Outcome.FAILED
    try:
        stub = server_service_pb2_grpc.ServerServiceStub(channel)
        request = server_service_pb2.RegisterServerRequest(join_token=join_token, agent_secret=secret,
                                                           address=address)
        try:
            server = _register_until(stub, request, time.monotonic() + retry_seconds)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                log.warning("join token refused by %s (%s): this agent is already registered or "
                            "the token is stale; serving with the secret it has (create a new "
                            "token with 'serversinc servers add' to enroll again)",
                            api, err.details())
                return Outcome.REFUSED
            log.error("could not register with the control plane at %s: %s %s; serving anyway",
                      api, err.code().name, err.details())
            return Outcome.FAILED
        log.info("registered with the control plane at %s as server %r (address %s)", api,
                 server.name, server.address)
        return Outcome.REGISTERED
    finally:
        if own:
            channel.close()


# ---- enrollment with a CSR (see the module docstring) -----------------------------------------
class EnrollError(Exception):
    """Enrollment refused or impossible; the message says what to do. Nothing secret in it."""


def _split(api: str) -> tuple[str, int]:
    host, sep, port = api.rpartition(":")
    if not sep or not port.isdigit():
        raise EnrollError(f"--join {api!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def presented_chain(api: str, timeout: float = 5.0) -> list[x509.Certificate]:
    """The certificates the API presents in a TLS handshake, leaf first. Nothing is verified and
    nothing is sent but the handshake: this is what gets checked against the pinned fingerprint."""
    host, port = _split(api)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=TLS_NAME) as tls:
        # Public from Python 3.13 (DER bytes); the same C method, private, since 3.10.
        getter = getattr(tls, "get_unverified_chain", None) or tls._sslobj.get_unverified_chain
        chain = getter() or []
    return [x509.load_der_x509_certificate(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER))
            for c in chain]


def pinned_ca(chain: list[x509.Certificate], expected: str, api: str) -> x509.Certificate:
    """The CA in `chain` whose fingerprint is `expected`, having checked that the API's own
    certificate (chain[0]) is issued by it. EnrollError says which check failed."""
    if not chain:
        raise EnrollError(f"the API at {api} presented no certificate")
    leaf, rest = chain[0], chain[1:]
    match = next((c for c in rest if pki.fingerprint(c) == expected), None)
    if match is None:
        seen = pki.fingerprint(rest[-1]) if rest else "not presented (the API sends only its own certificate)"
        raise EnrollError(
            f"the API's CA fingerprint is {seen}, the join command says {expected}: this is not the "
            f"control plane that printed the command, or its CA changed. Nothing was sent; check "
            f"--join {api} and copy the command 'serversinc servers add' printed again")
    if not pki.issued_by(leaf, match):
        raise EnrollError(
            f"the API at {api} presents the CA {expected} but its own certificate is not issued by "
            f"that CA (a foreign CA): refusing to send the join token to it")
    return match


def _fetch_chain(api: str, deadline: float) -> list[x509.Certificate]:
    delay = 0.2
    while True:
        try:
            return presented_chain(api, timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        except (OSError, ssl.SSLError) as err:
            if time.monotonic() >= deadline:
                raise EnrollError(f"cannot reach the API at {api} for its certificate: {err}") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def enroll_with_csr(api: str, join_token: str, ca_hash: str, secret: str, address: str,
                    certs_dir: Path, *, retry_seconds: float = RETRY_SECONDS):
    """Enrolls this agent (module docstring, steps 1-4) and writes ca.pem, agent.pem and
    agent-key.pem into `certs_dir`. Returns the RegisterServer response (the server). EnrollError
    when anything is refused: wrong fingerprint, foreign CA, used or expired token."""
    from serversinc.v1 import server_service_pb2, server_service_pb2_grpc

    from agent.serving_cert import COMMON_NAME, write_certs

    try:
        expected = pki.parse_fingerprint(ca_hash)
    except ValueError as err:
        raise EnrollError(f"--ca-hash: {err}") from None
    if plaintext_requested():
        raise EnrollError("--ca-hash checks the API's certificate, so it needs TLS: unset "
                          "SERVERSINC_API_PLAINTEXT")
    deadline = time.monotonic() + retry_seconds
    ca = pinned_ca(_fetch_chain(api, deadline), expected, api)
    ca_pem = ca.public_bytes(pki.serialization.Encoding.PEM)
    key = pki.new_key()
    request = server_service_pb2.RegisterServerRequest(
        join_token=join_token, agent_secret=secret, address=address,
        csr_pem=pki.make_csr(key, COMMON_NAME).decode())
    # Verified with the pinned CA only; the name checked is the one every API certificate carries
    # and agent certificates never do (common.api_tls.TLS_NAME), whatever address --join gives.
    channel = grpc.secure_channel(api, grpc.ssl_channel_credentials(root_certificates=ca_pem),
                                  options=[("grpc.ssl_target_name_override", TLS_NAME)])
    try:
        stub = server_service_pb2_grpc.ServerServiceStub(channel)
        try:
            server = _register_until(stub, request, deadline)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise EnrollError(f"the control plane at {api} refused to enroll this agent: "
                                  f"{err.details()}") from None
            raise EnrollError(f"could not register with the control plane at {api}: "
                              f"{err.code().name} {err.details()}") from None
    finally:
        channel.close()
    try:
        cert = x509.load_pem_x509_certificate(server.certificate_pem.encode())
        cas = x509.load_pem_x509_certificates(server.ca_certificate_pem.encode())
    except ValueError:
        raise EnrollError(f"the control plane at {api} returned no usable certificate (is it older "
                          "than this agent? then copy the certificates with scripts/certs.py)") from None
    if not pki.same_key(cert, key) or not pki.issued_by(cert, ca) or \
            expected not in {pki.fingerprint(c) for c in cas}:
        raise EnrollError(f"the certificate from {api} is not for this agent's key or not from the "
                          "pinned CA: not using it")
    write_certs(Path(certs_dir), server.ca_certificate_pem.encode(),
                cert.public_bytes(pki.serialization.Encoding.PEM), pki.key_pem(key))
    log.info("enrolled with the control plane at %s as server %r (address %s); certificate serial %s "
             "until %s, in %s", api, server.name, server.address, pki.serial_hex(cert),
             cert.not_valid_after_utc.date().isoformat(), certs_dir)
    return server
