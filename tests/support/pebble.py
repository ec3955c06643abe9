"""A real ACME server for tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS.

Started on free loopback ports with PEBBLE_VA_NOSLEEP=1 (no random validation delay) and no
rejected nonces; HTTP-01 is checked on `http_port` (the test front door's HTTP port) and every
name resolves to 127.0.0.1 unless a test points one elsewhere (`resolve`). `validity` sets how
long certificates last (short for renewal tests). Stopped after, whatever happened.

`ca_bundle` trusts pebble's own HTTPS (the ACME directory); `root_pem()` is the root that signs
the certificates it issues, to verify what the front door serves.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"


def available() -> bool:
    return os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)


def _tls_material(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it (pebble's HTTPS)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Pebble:
    directory: str          # the ACME directory URL
    ca_bundle: Path         # trusts pebble's HTTPS
    management: str         # pebble's management API (roots, ...)
    dns_management: str     # challtestsrv's management API
    http_port: int

    def root_pem(self) -> bytes:
        """The root of the certificates pebble issues (random per pebble run)."""
        return requests.get(f"{self.management}/roots/0", verify=str(self.ca_bundle),
                            timeout=10).content

    def resolve(self, host: str, address: str) -> None:
        """Point `host` at `address` in pebble's DNS (a loopback address with nothing on the
        HTTP-01 port makes the challenge fail)."""
        requests.post(f"{self.dns_management}/add-a",
                      json={"host": host.rstrip(".") + ".", "addresses": [address]},
                      timeout=10).raise_for_status()

    def unresolve(self, host: str) -> None:
        requests.post(f"{self.dns_management}/clear-a", json={"host": host.rstrip(".") + "."},
                      timeout=10).raise_for_status()


def directory_url(acme_port: int) -> str:
    return f"https://127.0.0.1:{acme_port}/dir"


def ca_bundle(folder: Path) -> Path:
    """Where `run_pebble(folder, ...)` writes the CA that signs pebble's own HTTPS certificate."""
    return Path(folder) / "ca.pem"


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port}:\n{log.read_text()[-2000:]}")


@contextmanager
def run_pebble(folder: Path, http_port: int, *, validity: int = 0,
               acme_port: int = 0) -> Iterator[Pebble]:
    """pebble + challtestsrv on free ports (see module docstring); `validity` in seconds (0:
    pebble's default of about 5 years). `acme_port` fixes the directory's port (a process started
    before pebble must be told its URL: `directory_url(acme_port)`, CA bundle `ca_bundle(folder)`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = _tls_material(folder)
    dns_port, dns_mgmt, mgmt_port = (free_port() for _ in range(3))
    acme_port = acme_port or free_port()
    config = {"pebble": {"listenAddress": f"127.0.0.1:{acme_port}",
                         "managementListenAddress": f"127.0.0.1:{mgmt_port}",
                         "certificate": str(cert), "privateKey": str(key),
                         "httpPort": http_port, "tlsPort": free_port(),
                         "ocspResponderURL": "", "externalAccountBindingRequired": False}}
    if validity:
        config["pebble"]["certificateValidityPeriod"] = validity
    (folder / "pebble.json").write_text(json.dumps(config))
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
               PEBBLE_AUTHZREUSE="0")
    procs: list[subprocess.Popen] = []
    try:
        dns_log = folder / "challtestsrv.log"
        with open(dns_log, "wb") as out:
            procs.append(subprocess.Popen(
                [CHALLTESTSRV, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_mgmt}"],
                stdout=out, stderr=subprocess.STDOUT, env=env))
        _wait_port(dns_mgmt, procs[-1], dns_log)
        pebble_log = folder / "pebble.log"
        with open(pebble_log, "wb") as out:
            procs.append(subprocess.Popen(
                [PEBBLE, "-config", str(folder / "pebble.json"),
                 "-dnsserver", f"127.0.0.1:{dns_port}"],
                stdout=out, stderr=subprocess.STDOUT, env=env))
        _wait_port(acme_port, procs[-1], pebble_log)
        yield Pebble(directory=directory_url(acme_port), ca_bundle=ca,
                     management=f"https://127.0.0.1:{mgmt_port}",
                     dns_management=f"http://127.0.0.1:{dns_mgmt}", http_port=http_port)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
