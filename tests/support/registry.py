"""A real container registry for tests: Debian's `docker-registry` (distribution 2.8).

It serves HTTPS with a certificate from the session's test CA and asks for a login (htpasswd,
bcrypt), on an address the test engines reach: a namespace host's root-side link address
(10.213.N.1), which the other hosts reach through a /32 route via their own link that this
fixture adds and removes. Engines trust it through /etc/docker/certs.d/ADDR:PORT/ca.crt, written
here and removed after, as a user's servers would. The registry's storage is a temp folder.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import requests

CERTS_D = Path("/etc/docker/certs.d")
START_TIMEOUT = 30.0


class RegistryError(RuntimeError):
    """The test registry could not be started (the message says why)."""


def missing_requirements() -> str:
    return "" if shutil.which("docker-registry") else "needs Debian's docker-registry (apt install docker-registry)"


@dataclass(frozen=True)
class TestRegistry:
    __test__ = False  # not a pytest test class

    address: str  # HOST:PORT
    username: str
    password: str = field(repr=False)
    ca_file: Path
    root: Path

    def tags(self, app: str) -> list[str]:
        """The tags of the app's repository (serversinc/APP), asked with the right login."""
        answer = requests.get(f"https://{self.address}/v2/serversinc/{app}/tags/list",
                              auth=(self.username, self.password), verify=str(self.ca_file), timeout=10)
        if answer.status_code == 404:
            return []
        answer.raise_for_status()
        return answer.json().get("tags") or []


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RegistryError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")


@contextmanager
def run_registry(root: Path, host: str, certs_dir: Path, reach_from=()):
    """Yields a TestRegistry on `host` (an address of the root namespace); `reach_from`: the
    namespace hosts (tests.support.hosts.TestHost) whose engines must reach it."""
    from scripts.certs import SERVER, load_pair, make_leaf, write_pair

    why = missing_requirements()
    if why:
        raise RegistryError(why)
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port(host)
    address = f"{host}:{port}"
    write_pair(root, "registry", make_leaf(load_pair(certs_dir, "ca"), "tugboat-test-registry",
                                           usage=SERVER, hosts=[host]))
    username, password = "ci", secrets.token_urlsafe(16)
    (root / "htpasswd").write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    (root / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / 'data'}
http:
  addr: {address}
  secret: {secrets.token_hex(16)}
  tls:
    certificate: {root / 'registry.pem'}
    key: {root / 'registry-key.pem'}
auth:
  htpasswd:
    realm: tugboat-test
    path: {root / 'htpasswd'}
""")
    trust = CERTS_D / address
    routes = [h for h in reach_from if h.peer_address != host]
    log = open(root / "registry.log", "ab")
    proc = None
    try:
        trust.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(certs_dir / "ca.pem", trust / "ca.crt")
        for h in routes:
            _run(*h.inside("ip", "route", "replace", f"{host}/32", "via", h.peer_address))
        proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        registry = TestRegistry(address, username, password, certs_dir / "ca.pem", root)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RegistryError(f"docker-registry exited ({proc.returncode}): "
                                    + (root / "registry.log").read_text()[-2000:])
            try:
                if requests.get(f"https://{address}/v2/", verify=str(registry.ca_file), timeout=2).status_code == 401:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RegistryError(f"docker-registry did not answer on {address} within {START_TIMEOUT:g}s")
            time.sleep(0.05)
        yield registry
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()
        for h in routes:
            subprocess.run(h.inside("ip", "route", "del", f"{host}/32"), capture_output=True, timeout=30)
        shutil.rmtree(trust, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
