"""Test hosts as network namespaces: each one a machine of its own for the control plane.

A host is a network namespace joined to the root namespace by a veth pair (10.213.N.1 on the
root side, 10.213.N.2 = the host's address inside), with its own Docker engine (dockerd started
with `nsenter --net`, as /work/shared/DESIGN.md measured; `ip netns exec` remounts /sys and
dockerd then fails), its own Tugboat agent process (listening on HOST_ADDR:7700, mutual TLS with
a certificate for HOST_ADDR from the session's test CA, its own secret and state dir, and an
allowlist of the root side's address only) and its own front door (the agent's HAProxy on
HOST_ADDR:8000). Only the network is separate: files, mounts and processes are shared, so an
engine's data root and everything else of a host lives under one temp dir of its own.

Concurrent test sessions never collide: a session takes a free *slot* (a lock file naming its
pid in RUN_DIR) and its names and addresses derive from it. A slot whose owner is dead is a
leftover of a killed run and is swept (processes, mounts, namespaces, veths, files) by the next
session that looks for a free one. Nothing outside the slot's own names is touched: no existing
interface, route or iptables rule of the root namespace, not /var/lib/docker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker

RUN_DIR = Path("/run/tugboat-test-hosts")
SLOTS = 16                       # at most this many sessions with hosts at once
HOSTS_PER_SLOT = 8               # subnet 10.213.(slot*8 + i).0/24 for host i of a slot
AGENT_PORT = 7700
FRONT_DOOR_PORT = 8000
TUGBOAT = Path(sys.executable).parent / "tugboat"
START_TIMEOUT = 60.0


class HostSetupError(RuntimeError):
    """A test host could not be made (the message says which step and why)."""


def missing_requirements() -> str:
    """Why namespace hosts cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "namespace test hosts need root (network namespaces, a second dockerd)"
    for tool in ("ip", "nsenter", "dockerd", "haproxy"):
        if shutil.which(tool) is None:
            return f"namespace test hosts need `{tool}` on PATH"
    if not TUGBOAT.exists():
        return f"no tugboat console script at {TUGBOAT} (pip install -e .)"
    return ""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise HostSetupError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- one host ------------------------------------------------------------------------------
@dataclass
class TestHost:
    """One namespace host. `address` is how the control plane (root namespace) reaches it."""

    __test__ = False  # not a pytest test class

    name: str                      # netns name, e.g. "tbh3a"
    subnet: int                    # N of 10.213.N.0/24
    root: Path                     # everything of the host lives here
    certs_dir: Path                # ca.pem, agent.pem (SAN: address), agent-key.pem
    secret: str
    allow: str = ""                # TUGBOAT_ALLOW of its agent ("" = the root side's address)
    dockerd: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    agent_log: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"10.213.{self.subnet}.2"

    @property
    def peer_address(self) -> str:
        """The root namespace's address on this host's link: where the control plane calls from."""
        return f"10.213.{self.subnet}.1"

    @property
    def agent_address(self) -> str:
        return f"{self.address}:{AGENT_PORT}"

    @property
    def front_door(self) -> str:
        return f"{self.address}:{FRONT_DOOR_PORT}"

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.name}"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def home(self) -> Path:
        """The agent's state dir (its front door's files are under it)."""
        return self.root / "agent"

    @contextmanager
    def docker(self):
        """`with host.docker() as engine:` a client of this host's own engine, closed after."""
        client = docker.DockerClient(base_url=self.docker_host, timeout=60)
        try:
            yield client
        finally:
            client.close()

    def inside(self, *argv: str) -> list[str]:
        """`argv` run in this host's network namespace."""
        return ["nsenter", f"--net={self.netns_path}", *argv]

    # ---- the agent: stopped and started again by tests (an agent that is down) ----
    def start_agent(self) -> None:
        """Starts the agent process in the namespace; returns once it listens (it adopts the
        front door that a previous run of it left serving)."""
        if self.agent is not None and self.agent.poll() is None:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUGBOAT_", "DOCKER_"))}
        env.update(DOCKER_HOST=self.docker_host, TUGBOAT_SECRET_KEY=self.secret,
                   TUGBOAT_ALLOW=self.allow or self.peer_address, PYTHONUNBUFFERED="1")
        argv = self.inside(str(TUGBOAT), "--listen", self.agent_address, "--home", str(self.home),
                           "--router", "haproxy", "--front-door", self.front_door,
                           "--certs", str(self.certs_dir))
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        (self.root / "agent.pid").write_text(f"{proc.pid}\n")
        seen: list[str] = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("tugboat listening"):
                break
        else:
            proc.wait(30)
            raise HostSetupError(f"agent of {self.name} did not start:\n" + "".join(seen[-40:]))
        self.agent, self.agent_log = proc, seen
        # Keep draining its output (kept for failure messages) so it never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.agent_log.append(line)
            del self.agent_log[:-500]

    def stop_agent(self, sig: int = signal.SIGKILL) -> None:
        """Ends the agent process (SIGKILL by default: a crash); its front door keeps serving."""
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(sig)
            self.agent.wait(30)
        self.agent = None


# ---- the whole set of a session ----------------------------------------------------------------
class HostSet:
    """The hosts of one session (slot). Use `make_hosts` rather than this directly."""

    def __init__(self, slot: int, lock_file, base: Path):
        self.slot = slot
        self._lock_file = lock_file
        self.base = base
        self.hosts: list[TestHost] = []

    def host_name(self, index: int) -> str:
        return f"tbh{self.slot}{chr(ord('a') + index)}"

    def subnet(self, index: int) -> int:
        return self.slot * HOSTS_PER_SLOT + index

    def add_namespace(self, index: int) -> tuple[str, int]:
        """A bare namespace with its veth link (no engine, no agent): hosts use it, and so do
        tests that need a caller from an address of its own (10.213.N.2)."""
        name, subnet = self.host_name(index), self.subnet(index)
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", f"{name}-r", "type", "veth", "peer", "name", f"{name}-h")
        _run("ip", "link", "set", f"{name}-h", "netns", name)
        _run("ip", "addr", "add", f"10.213.{subnet}.1/24", "dev", f"{name}-r")
        _run("ip", "link", "set", f"{name}-r", "up")
        inside = ["nsenter", f"--net=/var/run/netns/{name}"]
        _run(*inside, "ip", "addr", "add", f"10.213.{subnet}.2/24", "dev", f"{name}-h")
        _run(*inside, "ip", "link", "set", f"{name}-h", "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        return name, subnet

    def add_host(self, index: int, *, allow: str = "") -> TestHost:
        from scripts.certs import SERVER, load_pair, make_leaf, write_pair
        from tests.conftest import new_secret, session_certs

        name, subnet = self.add_namespace(index)
        root = self.base / name
        root.mkdir(parents=True)
        certs = root / "certs"
        certs.mkdir(mode=0o700)
        ca = load_pair(session_certs(), "ca")
        shutil.copyfile(session_certs() / "ca.pem", certs / "ca.pem")
        write_pair(certs, "agent", make_leaf(ca, f"tugboat-agent-{name}", usage=SERVER,
                                             hosts=[f"10.213.{subnet}.2"]))
        host = TestHost(name=name, subnet=subnet, root=root, certs_dir=certs, secret=new_secret(),
                        allow=allow)
        self.hosts.append(host)
        self._start_engine(host)
        host.start_agent()
        return host

    def _start_engine(self, host: TestHost) -> None:
        for sub in ("data", "exec"):
            (host.root / sub).mkdir()
        log = open(host.root / "dockerd.log", "ab")
        argv = host.inside("dockerd", "--data-root", str(host.root / "data"),
                           "--exec-root", str(host.root / "exec"), "--pidfile", str(host.root / "dockerd.pid"),
                           "-H", host.docker_host, "--ip", host.address,
                           "--bip", f"10.214.{host.subnet}.1/24", "--log-level", "warn")
        host.dockerd = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if host.dockerd.poll() is not None:
                raise HostSetupError(f"dockerd of {host.name} exited ({host.dockerd.returncode}): "
                                     + (host.root / "dockerd.log").read_text()[-2000:])
            try:
                with host.docker() as client:
                    client.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise HostSetupError(f"dockerd of {host.name} did not answer within {START_TIMEOUT:g}s")
                time.sleep(0.05)

    def close(self) -> None:
        """Removes everything of the slot, in order: agents, front doors, engines, links, files."""
        for host in self.hosts:
            host.stop_agent(signal.SIGTERM)
        from agent.frontdoor import stop as stop_front_door
        from agent.frontdoor_files import FrontDoorFiles

        for host in self.hosts:
            stop_front_door(FrontDoorFiles.for_state(host.home))
        _remove_containers(self.base)
        # Our own children: SIGTERM (dockerd stops its containers and unmounts), then reap them,
        # or they linger as zombies that look alive to the sweep.
        engines = [h.dockerd for h in self.hosts if h.dockerd is not None and h.dockerd.poll() is None]
        for proc in engines:
            proc.terminate()
        for proc in engines:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        sweep_slot(self.slot, self.base)
        self.hosts.clear()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


# ---- slots, and sweeping what a killed run left ----------------------------------------------
def _slot_base(slot: int) -> Path:
    return Path(f"/tmp/tugboat-hosts-{slot}")


def _processes_under(base: Path) -> list[int]:
    """Pids whose command line names `base` (our dockerd, containerd and shims, agents,
    HAProxy), with the children of each (a container's processes under its shim)."""
    needle = str(base).encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    for pid in list(found):
        found.update(_descendants(pid))
    return sorted(found)


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in out:
                    out.add(child)
                    todo.append(child)
    return out


def _remove_containers(base: Path) -> None:
    """Force-removes every container of the slot's engines that still answer: dockerd would
    otherwise give each one its stop timeout (10 s) at shutdown."""
    for sock in base.glob("*/docker.sock"):
        try:
            client = docker.DockerClient(base_url=f"unix://{sock}", timeout=30)
        except docker.errors.DockerException:
            continue
        try:
            for container in client.containers.list(all=True):
                try:
                    container.remove(force=True)
                except docker.errors.APIError:
                    pass
        except (docker.errors.DockerException, OSError):
            pass
        finally:
            client.close()


def _stop_engine(base: Path) -> None:
    """SIGTERM each dockerd of the slot (it unmounts what it mounted), then wait."""
    pids = []
    for pidfile in base.glob("*/dockerd.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(pid) and str(base).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + 30
    while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _unmount_under(base: Path) -> None:
    prefix = str(base) + "/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def sweep_slot(slot: int, base: Path | None = None) -> None:
    """Removes whatever slot `slot` holds: works on a clean set and on a killed run's leftovers."""
    from agent.frontdoor import stop as stop_front_door
    from agent.frontdoor_files import FrontDoorFiles

    base = base or _slot_base(slot)
    if base.exists():
        for home in base.glob("*/agent"):
            stop_front_door(FrontDoorFiles.for_state(home))
        _remove_containers(base)
        _stop_engine(base)
        for pid in _processes_under(base):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _unmount_under(base)
    prefix = f"tbh{slot}"
    netns = _run("ip", "netns", "list", check=False).stdout.split()
    for name in netns:
        if name.startswith(prefix) and len(name) == len(prefix) + 1:
            _run("ip", "link", "del", f"{name}-r", check=False)
            _run("ip", "netns", "del", name, check=False)
    links = _run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if ifname.startswith(prefix) and ifname.endswith("-r") and len(ifname) == len(prefix) + 3:
            _run("ip", "link", "del", ifname, check=False)
    if base.exists():
        shutil.rmtree(base, ignore_errors=True)


def _take_slot():
    """(slot, open locked file): the first slot no live session holds; dead ones are swept."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        f = open(RUN_DIR / f"slot-{slot}.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        # The lock dies with its holder, so a free lock with leftovers is a killed run's.
        sweep_slot(slot)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        return slot, f
    raise HostSetupError(f"all {SLOTS} test-host slots are held by live sessions")


@contextmanager
def make_hosts(count: int, *, allow: str = ""):
    """Context manager: `count` namespace hosts (engine, agent, front door each), all removed
    afterwards, also when the body fails. Yields the HostSet; its `.hosts` are the TestHosts."""
    if not 0 < count < HOSTS_PER_SLOT:
        raise ValueError(f"1 to {HOSTS_PER_SLOT - 1} hosts per session")
    slot, lock = _take_slot()
    base = _slot_base(slot)
    base.mkdir(mode=0o755)
    hosts = HostSet(slot, lock, base)
    try:
        for index in range(count):
            hosts.add_host(index, allow=allow)
        yield hosts
    finally:
        hosts.close()


def add_caller(hosts: HostSet, target: TestHost, letter: str = "z") -> tuple[str, str]:
    """A bare namespace linked to `target`'s namespace only (not through the root namespace,
    whose Docker firewall drops forwarded traffic): a third machine on the host's network.
    Returns (its netns path, its own address); it reaches `target.address` over that link."""
    name = f"tbh{hosts.slot}{letter}"
    subnet = hosts.slot * HOSTS_PER_SLOT + HOSTS_PER_SLOT - 1
    mine, theirs = f"10.213.{subnet}.2", f"10.213.{subnet}.1"
    _run("ip", "netns", "add", name)
    _run("ip", "link", "add", f"{name}-h", "type", "veth", "peer", "name", f"{name}-t")
    _run("ip", "link", "set", f"{name}-h", "netns", name)
    _run("ip", "link", "set", f"{name}-t", "netns", target.name)
    inside_caller = ["nsenter", f"--net=/var/run/netns/{name}"]
    _run(*target.inside("ip", "addr", "add", f"{theirs}/24", "dev", f"{name}-t"))
    _run(*target.inside("ip", "link", "set", f"{name}-t", "up"))
    _run(*inside_caller, "ip", "addr", "add", f"{mine}/24", "dev", f"{name}-h")
    _run(*inside_caller, "ip", "link", "set", f"{name}-h", "up")
    _run(*inside_caller, "ip", "link", "set", "lo", "up")
    _run(*inside_caller, "ip", "route", "add", f"{target.address}/32", "via", theirs)
    return f"/var/run/netns/{name}", mine


# ---- an agent from a given command line (enrollment tests) -----------------------------------
@dataclass
class CommandAgent:
    """A `tugboat` process started by `start_agent_from_argv`; `output` grows while it runs."""

    __test__ = False

    proc: subprocess.Popen
    home: Path
    output: list[str]
    listening: bool

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        """Ends the process and the front door it started (state under `home`)."""
        from agent.frontdoor import stop as stop_front_door
        from agent.frontdoor_files import FrontDoorFiles

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        stop_front_door(FrontDoorFiles.for_state(self.home))


def start_agent_from_argv(host: TestHost, argv: list[str], home: Path, *,
                          env: dict[str, str] | None = None) -> CommandAgent:
    """Runs `argv`, a `tugboat ...` command line (e.g. the join command CreateServer printed;
    "tugboat" is this virtualenv's), in `host`'s namespace with `--home home`, an empty state
    dir: its certs folder (home/../certs) starts empty too. None of the session's TUGBOAT_ or
    DOCKER_ settings are passed, except DOCKER_HOST = the host's engine, plus `env`. Returns once
    the agent listens, or once it has exited (a refused enrollment); the caller stops it."""
    home = Path(home)
    home.parent.mkdir(parents=True, exist_ok=True)
    if home.exists() and any(home.iterdir()):
        raise HostSetupError(f"{home} is not empty")
    command = [str(TUGBOAT) if argv[0] == "tugboat" else argv[0], *argv[1:], "--home", str(home)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TUGBOAT_", "DOCKER_"))}
    clean.update(DOCKER_HOST=host.docker_host, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.Popen(host.inside(*command), env=clean, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen: list[str] = []
    listening = False
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("tugboat listening"):
            listening = True
            break
    if not listening:
        proc.wait(30)
    agent = CommandAgent(proc, home, seen, listening)

    def drain() -> None:
        for line in proc.stdout:
            seen.append(line)

    if listening:
        threading.Thread(target=drain, daemon=True).start()
    return agent
