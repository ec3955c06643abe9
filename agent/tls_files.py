"""The front door's TLS files: default certificate, one PEM per domain, the crt-list, the maps.

Laid out under `<state_dir>/tls/` and read by HAProxy at every start and reload, so whatever the
runtime API put in service is also what a restarted HAProxy serves:
- `default.pem`: a self-signed certificate the agent makes once, so HAProxy starts (and answers
  a handshake for an unknown name) before any domain has a certificate;
- `certs/<domain>.pem`: certificate chain + private key of one domain (HAProxy wants both in
  one file), mode 0600, written only through `common.files.write_atomic`;
- `crt-list`: one line per domain certificate in service;
- `challenges.map` (HTTP-01 token -> key authorization, while an order is open),
  `redirect.map` (host -> HTTPS port, for hosts whose app asks for the redirect and whose
  certificate is in service) and `hsts.map` (host -> Strict-Transport-Security value).

Private keys never leave this folder: nothing here logs or returns key material.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.files import write_atomic

DEFAULT_NAME = "tugboat-default"


def new_key_pem() -> bytes:
    """A fresh P-256 private key, PEM (PKCS#8, unencrypted: HAProxy reads it at start)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed_pem(common_name: str = DEFAULT_NAME, days: int = 3650) -> bytes:
    """Certificate + key PEM of a self-signed certificate (the front door's default)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


@dataclass(frozen=True)
class CertInfo:
    """What may be shown of a certificate: no key material."""

    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str
    names: tuple[str, ...]


def cert_info(pem: bytes) -> CertInfo:
    """The leaf (first certificate) of a PEM chain, described."""
    cert = x509.load_pem_x509_certificates(pem)[0]
    try:
        names = tuple(cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(issuer=cert.issuer.rfc4514_string(), not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc, serial=format(cert.serial_number, "x"),
                    names=names)


def bundle_pem(cert_pem: bytes, key_pem: bytes) -> bytes:
    """One PEM for HAProxy: chain then key, with no blank line (a runtime API payload ends at the
    first empty line)."""
    lines = [line for line in (cert_pem.strip() + b"\n" + key_pem.strip()).splitlines()
             if line.strip()]
    return b"\n".join(lines) + b"\n"


def check_pair(cert_pem: bytes, key_pem: bytes, domain: str) -> CertInfo:
    """An uploaded certificate and key, checked: they parse, the key matches the certificate, the
    certificate names `domain` and has not expired. ValueError says what is wrong (never what the
    key holds)."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ValueError("the certificate is not a PEM X.509 certificate (chain)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the key is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            certs[0].public_key().public_bytes(serialization.Encoding.PEM, public):
        raise ValueError("the key does not belong to the certificate")
    info = cert_info(cert_pem)
    if not any(name_matches(n, domain) for n in info.names):
        raise ValueError(f"the certificate is for {', '.join(info.names) or 'no DNS name'}, "
                         f"not {domain}")
    if info.not_after <= dt.datetime.now(dt.timezone.utc):
        raise ValueError(f"the certificate expired on {info.not_after.isoformat()}")
    return info


def name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.count(".") == pattern.count(".") and host.endswith(pattern[1:])
    return pattern == host


class TlsFiles:
    """The files of `<state_dir>/tls` (see module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "tls"

    default_cert = property(lambda self: self.dir / "default.pem")
    certs_dir = property(lambda self: self.dir / "certs")
    crt_list = property(lambda self: self.dir / "crt-list")
    challenges_map = property(lambda self: self.dir / "challenges.map")
    redirect_map = property(lambda self: self.dir / "redirect.map")
    hsts_map = property(lambda self: self.dir / "hsts.map")
    state_file = property(lambda self: self.dir / "state.json")
    acme_dir = property(lambda self: self.dir / "acme")

    def cert_path(self, domain: str) -> Path:
        return self.certs_dir / f"{domain}.pem"

    def ensure(self) -> None:
        """Make what HAProxy needs to start: the folder (0700), the default certificate and every
        file the config names (empty when nothing is in them yet)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self.certs_dir.mkdir(exist_ok=True)
        if not self.default_cert.exists():
            write_atomic(self.default_cert, self_signed_pem())
        for path in (self.crt_list, self.challenges_map, self.redirect_map, self.hsts_map):
            if not path.exists():
                write_atomic(path, "")

    def listed(self) -> list[Path]:
        """The certificate files in the crt-list, in order."""
        try:
            text = self.crt_list.read_text()
        except FileNotFoundError:
            return []
        return [Path(line.split()[0]) for line in text.splitlines() if line.strip()]

    def in_service(self) -> set[str]:
        """Domains whose certificate file is in the crt-list."""
        return {p.name[:-len(".pem")] for p in self.listed() if p.name.endswith(".pem")}

    def write_cert(self, domain: str, bundle: bytes) -> Path:
        path = self.cert_path(domain)
        write_atomic(path, bundle, mode=0o600)
        return path

    def list_cert(self, path: Path) -> bool:
        """Add `path` to the crt-list file; False when it was there already."""
        listed = self.listed()
        if Path(path) in listed:
            return False
        write_atomic(self.crt_list, "".join(f"{p}\n" for p in listed + [Path(path)]))
        return True

    def unlist_cert(self, path: Path) -> bool:
        listed = self.listed()
        if Path(path) not in listed:
            return False
        write_atomic(self.crt_list, "".join(f"{p}\n" for p in listed if p != Path(path)))
        return True

    def write_map(self, path: Path, entries: dict[str, str]) -> None:
        write_atomic(path, "".join(f"{k} {v}\n" for k, v in sorted(entries.items())))
