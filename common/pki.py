"""The platform's certificate authority and the certificates it issues (EC P-256, X.509), as objects and files.

One module for every process that mints certificates: scripts/certs.py (the CLI that run.sh and the
image's `init` call) and the control plane, which issues its own API certificate from the CA when
it is missing (common.api_tls). Tests use it to mint throwaway CAs and expired or not-yet-valid
certificates. No gRPC here: callers turn the PEM bytes into credentials.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.files import write_atomic

DEFAULT_DAYS = 825
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
SERVER = "server"
CLIENT = "client"


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key (objects; `cert_pem` / `key_pem` give bytes)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Serversinc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _window(days: int, not_before: dt.datetime | None, not_after: dt.datetime | None
            ) -> tuple[dt.datetime, dt.datetime]:
    start = not_before or _now() - dt.timedelta(minutes=5)  # small allowance for clock skew
    return start, not_after or start + dt.timedelta(days=days)


def make_ca(common_name: str = "Serversinc agents CA", *, days: int = 3650,
            not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Pair:
    """A self-signed CA that may only issue leaf certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(days, not_before, not_after)
    name = _name(common_name)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert, key)


def _san(hosts) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    seen = set()
    for host in hosts:
        host = host.strip()
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_leaf(ca: Pair, common_name: str, *, usage: str = SERVER, hosts=(), days: int = DEFAULT_DAYS,
              not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Pair:
    """A certificate signed by `ca`: `usage` SERVER (serverAuth, SANs from `hosts`) or CLIENT
    (clientAuth). `not_before` / `not_after` override the validity window (tests)."""
    if usage not in (SERVER, CLIENT):
        raise ValueError(f"usage must be {SERVER!r} or {CLIENT!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(days, not_before, not_after)
    eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=True,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if usage == SERVER or hosts:
        builder = builder.add_extension(_san(hosts or DEFAULT_HOSTS), critical=False)
    return Pair(builder.sign(ca.key, hashes.SHA256()), key)


def write_pem(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; 0600 when `private` (a key), else 0644 (a certificate anyone may read)."""
    write_atomic(path, data, mode=0o600 if private else 0o644)


def write_pair(out: Path, stem: str, pair: Pair) -> None:
    write_pem(Path(out) / f"{stem}-key.pem", pair.key_pem, private=True)
    write_pem(Path(out) / f"{stem}.pem", pair.cert_pem)


def load_pair(out: Path, stem: str) -> Pair:
    cert = x509.load_pem_x509_certificate((Path(out) / f"{stem}.pem").read_bytes())
    key = serialization.load_pem_private_key((Path(out) / f"{stem}-key.pem").read_bytes(), None)
    return Pair(cert, key)


def uncovered_hosts(cert: x509.Certificate, hosts) -> list[str]:
    """The names / IPs in `hosts` that `cert`'s SANs do not list."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [h for h in hosts if h]
    names = set(san.get_values_for_type(x509.DNSName))
    ips = set(san.get_values_for_type(x509.IPAddress))
    missing = []
    for host in (h.strip() for h in hosts):
        try:
            covered = ipaddress.ip_address(host) in ips
        except ValueError:
            covered = host in names
        if host and not covered:
            missing.append(host)
    return missing


def exists(out: Path, stem: str) -> bool:
    """Both files of the pair `stem` (`stem.pem`, `stem-key.pem`) are in `out`."""
    return (Path(out) / f"{stem}.pem").exists() and (Path(out) / f"{stem}-key.pem").exists()


# ---- enrollment: the CA's fingerprint, certificate signing requests --------------------------
# An agent that joins knows the platform CA only by this fingerprint (printed in its join
# command, as kubeadm's --discovery-token-ca-cert-hash); the control plane prints it and the agent
# checks it, both through these two functions.
FINGERPRINT_PREFIX = "sha256:"
AGENT_DAYS = 90  # an enrolled agent's certificate; `servers rotate-cert` renews it in place


def fingerprint(cert: x509.Certificate | bytes) -> str:
    """"sha256:<64 hex>" of the certificate's DER encoding (`cert` an object or PEM bytes)."""
    if isinstance(cert, (bytes, str)):
        cert = x509.load_pem_x509_certificate(cert.encode() if isinstance(cert, str) else cert)
    return FINGERPRINT_PREFIX + cert.fingerprint(hashes.SHA256()).hex()


def parse_fingerprint(text: str) -> str:
    """A fingerprint as written by a person ("sha256:AB..", colons allowed), normalised to
    fingerprint()'s form; ValueError saying the expected form otherwise."""
    value = (text or "").strip().lower()
    if value.startswith(FINGERPRINT_PREFIX):
        value = value[len(FINGERPRINT_PREFIX):]
    value = value.replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{text!r} is not a CA fingerprint: expected sha256: and 64 hex digits, "
                         "as the join command 'serversinc servers add' prints")
    return FINGERPRINT_PREFIX + value


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_csr(key, common_name: str) -> bytes:
    """A PEM certificate signing request for `key`. What it asks for beyond the key is ignored:
    the control plane decides names and usages (sign_csr)."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


class CsrError(ValueError):
    """A certificate signing request that cannot be signed; the message says why."""


def sign_csr(ca: Pair, csr_pem: bytes | str, *, common_name: str, hosts, days: int = AGENT_DAYS,
             not_after: dt.datetime | None = None) -> x509.Certificate:
    """An agent certificate for the CSR's key, issued by `ca`: serverAuth and clientAuth, SANs
    `hosts` only. Nothing but the public key is taken from the CSR (whose signature proves the
    requester holds the key), so a requester cannot name itself something it is not. CsrError
    for a CSR that does not parse, is not self-signed or has a weak key."""
    if isinstance(csr_pem, str):
        csr_pem = csr_pem.encode()
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise CsrError("the certificate signing request is not a PEM CSR") from None
    if not csr.is_signature_valid:
        raise CsrError("the certificate signing request's signature does not verify")
    public = csr.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.key_size < 256:
            raise CsrError("the certificate signing request's EC key is weaker than P-256")
    elif isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise CsrError("the certificate signing request's RSA key is shorter than 2048 bits")
    else:
        raise CsrError("the certificate signing request's key is neither EC nor RSA")
    hosts = [h for h in hosts if h]
    if not hosts:
        raise CsrError("no host name or address to issue the certificate for")
    start, end = _window(days, None, not_after)
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                          content_commitment=False, key_encipherment=isinstance(public, rsa.RSAPublicKey),
                          data_encipherment=False, key_agreement=isinstance(public, ec.EllipticCurvePublicKey),
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                           critical=False)
            .add_extension(_san(hosts), critical=False)
            .sign(ca.key, hashes.SHA256()))


def serial_hex(cert: x509.Certificate) -> str:
    """How serials are shown and stored: lowercase hex, no separators."""
    return format(cert.serial_number, "x")


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """`cert` names `ca` as its issuer and carries its signature."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def same_key(cert: x509.Certificate, key) -> bool:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(serialization.Encoding.DER, public) == \
        key.public_key().public_bytes(serialization.Encoding.DER, public)
