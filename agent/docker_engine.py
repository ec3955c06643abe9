"""Docker adapter: the only module that imports `docker`.

Everything else talks to plain dataclasses returned from here, so the domain logic
(build orchestration, release steps) can be read and tested without the SDK's types.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Iterator

import docker
import docker.errors
from docker.api.client import APIClient

from agent import labels as L
from common import registry as registry_rules


class EngineError(Exception):
    """An engine call failed; the message is Docker's own explanation."""


class NotOnEngine(EngineError):
    """The container or image does not exist on this engine."""


DEFAULT_PORT_RANGE = (20000, 29999)  # below Linux's ephemeral range (32768-60999)
MAX_PORT_TRIES = 50


def port_range(value: str | None) -> tuple[int, int]:
    """`TUGBOAT_PORT_RANGE` ("LOW-HIGH"), or the default."""
    if not value:
        return DEFAULT_PORT_RANGE
    low, sep, high = value.partition("-")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (0, 0)
    if not sep or not 1024 <= bounds[0] <= bounds[1] <= 65535:
        raise ValueError(f"TUGBOAT_PORT_RANGE {value!r} must be LOW-HIGH within 1024-65535")
    return bounds


def candidate_ports(bounds: tuple[int, int], used: set[int], start: int,
                    tries: int = MAX_PORT_TRIES) -> Iterator[int]:
    """Up to `tries` ports of `bounds` not in `used`, from `start` (any int) on, wrapping.

    A random start keeps agents sharing one engine from racing for the same first port."""
    low, high = bounds
    size = high - low + 1
    given = 0
    for offset in range(size):
        port = low + (start + offset) % size
        if port in used:
            continue
        yield port
        given += 1
        if given >= tries:
            return


def port_is_free(port: int) -> bool:
    """Nothing on this host listens on (or holds) 127.0.0.1:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class ContainerRecord:
    """What the agent needs to know about one managed container."""

    id: str
    name: str
    app: str
    deployment_id: int
    commit_sha: str
    image: str
    state: str
    exit_code: int
    restart_count: int
    host_port: int | None
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    oom_killed: bool = False  # the kernel killed it for memory (kept by Docker across restarts)
    finished_at: datetime | None = None  # its last exit, None if it never exited
    health_status: str = ""  # Docker HEALTHCHECK: "", "starting", "healthy", "unhealthy"
    health_output: str = ""  # output of the last HEALTHCHECK run
    stop_signal: str = ""
    restart_policy: str = ""  # "no" until the container passed its health gate
    # The agent's choice (label). `host_port` is the published one, or this one while the
    # container is stopped or restarting (Docker publishes it again on the same port).
    pinned_port: int | None = None

    @property
    def direct_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}" if self.host_port else ""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ImageRecord:
    id: str
    tags: tuple[str, ...]
    labels: dict[str, str]


@dataclass(frozen=True)
class VolumeRecord:
    """A Docker named volume: its name and labels (agent.volumes says whose it is)."""

    name: str
    labels: dict[str, str]


@dataclass
class ContainerSpec:
    """How to start a container: the release step fills this in."""

    name: str
    image: str
    port: int
    env: dict[str, str]
    labels: dict[str, str]
    restart_policy: str = "unless-stopped"
    stop_signal: str = "SIGTERM"  # what `stop` sends before SIGKILL
    # The app's limits (0: none): memory in bytes (swap included, so it is not doubled by swap)
    # and CPU in thousandths of a CPU.
    memory_bytes: int = 0
    cpu_millis: int = 0
    # Named volumes to mount, (docker volume, path in the container); they must exist (agent.volumes).
    volumes: tuple[tuple[str, str], ...] = ()
    # The argv to run instead of the image's CMD (one-off and release commands); empty: the CMD.
    command: tuple[str, ...] = ()


class BuildHandle:
    """Lets another thread abort one running build.

    Docker's legacy builder streams its output over a long HTTP response; the only way to stop
    it from the client side is to drop that connection, which the daemon treats as a cancel.
    `socket.shutdown` is used rather than `close` because shutdown wakes a thread blocked in
    `recv`, while close from another thread may leave it blocked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response = None
        self.aborted = False

    def attach(self, response) -> None:
        with self._lock:
            self._response = response
            aborted = self.aborted
        if aborted:
            _shutdown_response(response)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            response = self._response
        if response is not None:
            _shutdown_response(response)


def _response_socket(response):
    """Dig the socket out of a streaming requests response (unix socket or TCP)."""
    try:
        raw = response.raw._fp.fp.raw
    except AttributeError:
        return None
    return getattr(raw, "_sock", None) or getattr(raw, "sock", None) or raw


def _shutdown_response(response) -> None:
    sock = _response_socket(response)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _RecordingAPIClient(APIClient):
    """APIClient that hands the streaming response of `build` to a BuildHandle.

    `APIClient.build` returns only a generator over the response, with no way to reach the
    connection; overriding `_post` is the narrowest hook that exposes it. The handle is passed
    through a thread-local because one client serves many concurrent builds.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def _post(self, url, *args, **kwargs):
        extra = getattr(self._local, "build_params", None)
        if extra and url.endswith("/build"):
            # Query parameters docker-py's build() does not take (cpuperiod, cpuquota).
            kwargs["params"] = {**(kwargs.get("params") or {}), **extra}
        response = super()._post(url, *args, **kwargs)
        handle = getattr(self._local, "build_handle", None)
        if handle is not None and url.endswith("/build"):
            self._local.build_handle = None
            handle.attach(response)
        return response

    def build_with_handle(self, handle: BuildHandle, params: dict | None = None, **kwargs):
        self._local.build_handle = handle
        self._local.build_params = params or {}
        try:
            return self.build(**kwargs)
        finally:
            self._local.build_handle = None
            self._local.build_params = None


def container_limits(memory_bytes: int, cpu_millis: int) -> dict:
    """docker-py create() arguments for an app's limits (0: none). Swap is held to the memory
    limit (memswap = memory): Docker's default allows as much swap again, doubling the limit."""
    limits: dict = {}
    if memory_bytes:
        limits.update(mem_limit=memory_bytes, memswap_limit=memory_bytes)
    if cpu_millis:
        limits["nano_cpus"] = cpu_millis * 1_000_000
    return limits


CPU_PERIOD_US = 100_000  # the CFS period Docker uses for --cpus


def build_limits(memory_bytes: int, cpu_millis: int) -> dict:
    """/build query parameters for a build's limits (0: none): each RUN step's container gets
    them. CPU is a CFS quota per period, what `--cpus` means for a container."""
    limits: dict = {}
    if memory_bytes:
        limits.update(memory=memory_bytes, memswap=memory_bytes)
    if cpu_millis:
        limits.update(cpuperiod=CPU_PERIOD_US, cpuquota=cpu_millis * CPU_PERIOD_US // 1000)
    return limits


def daemon_url(api: APIClient) -> str:
    """The daemon address an existing client talks to, in the form APIClient accepts."""
    socket_path = getattr(getattr(api, "_custom_adapter", None), "socket_path", None)
    if socket_path:
        return "unix://" + socket_path
    return api.base_url


def _parse_time(value: str) -> datetime:
    # Docker gives RFC3339 with nanoseconds; Python's parser takes at most microseconds.
    value = value.rstrip("Z")
    if "." in value:
        head, frac = value.split(".", 1)
        value = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(0, timezone.utc)


class DockerEngine:
    """Thin, typed wrapper over the Docker SDK for exactly what the agent does."""

    def __init__(self, client: docker.DockerClient | None = None, agent_id: str = "",
                 ports: tuple[int, int] | None = None) -> None:
        self.client = client or docker.from_env()
        self.agent_id = agent_id
        self.port_range = ports or port_range(os.environ.get("TUGBOAT_PORT_RANGE"))
        self._ports_lock = threading.Lock()
        # A private low-level client for builds (same daemon) so their responses can be aborted.
        self._build_api = _RecordingAPIClient(
            base_url=daemon_url(self.client.api), version=self.client.api.api_version,
            timeout=None)

    # ---- images -------------------------------------------------------------------------
    def image_id(self, ref: str) -> str | None:
        """The image id for `ref`, or None when it does not exist."""
        try:
            return self.client.api.inspect_image(ref)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def build(self, context: IO[bytes], *, dockerfile: str, tag: str, labels: dict[str, str],
              handle: BuildHandle, memory_bytes: int = 0, cpu_millis: int = 0) -> Iterator[dict]:
        """Stream the daemon's build output dicts (`stream`, `aux`, `error`); each RUN step
        runs under the limits (0: none)."""
        try:
            stream = self._build_api.build_with_handle(
                handle, params=build_limits(memory_bytes, cpu_millis), fileobj=context,
                custom_context=True, dockerfile=dockerfile, tag=tag,
                decode=True, rm=True, forcerm=True, labels=labels)
            yield from stream
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        except Exception as exc:  # connection dropped: by our abort, or the daemon
            if handle.aborted:
                return
            raise EngineError(f"build stream failed: {exc}") from exc

    def image(self, ref: str) -> ImageRecord | None:
        """The image `ref` names (a tag or an id) with its labels, or None when it does not exist."""
        try:
            data = self.client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return ImageRecord(data["Id"], tuple(data.get("RepoTags") or ()),
                           dict((data.get("Config") or {}).get("Labels") or {}))

    def remove_images(self, app: str) -> int:
        """Remove the images the agent built for `app`, and nothing else.

        Only images labelled managed + app are touched (never chosen by repository name, so an
        app named `busybox` leaves the host's own `busybox:latest` alone); of those, only the
        `<app>:*` tags are removed, so a tag somebody else put on the same image keeps it.
        """
        removed = 0
        filters = {"label": [f"{L.MANAGED}=true", f"{L.APP}={app}"]}
        try:
            images = self.client.api.images(filters=filters)
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        for image in images:
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            # Its registry tag (REGISTRY/serversinc/<app>:*, a release this server pushed) is ours too.
            ours = [t for t in tags if registry_rules.is_app_repository(registry_rules.tag_repository(t), app)]
            refs = ours if len(ours) < len(tags) else (ours or [image["Id"]])
            for ref in refs:
                try:
                    self.client.api.remove_image(ref, force=len(ours) == len(tags))
                    removed += 1
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    if "conflict" not in str(exc).lower():
                        raise EngineError(str(exc.explanation or exc)) from exc
        return removed

    # ---- containers ---------------------------------------------------------------------
    def run(self, spec: ContainerSpec) -> ContainerRecord:
        """Create and start a container, its port pinned to a free 127.0.0.1 port (`HOST_PORT`).

        An explicit host port, unlike a random one, is kept by Docker across every restart
        (a crash, dockerd's restart, a reboot), so the router's address stays right with no
        agent in the loop, and it stays reserved while the container is stopped: no other
        container is given it, so one app's traffic never reaches another app.

        create + start rather than `containers.run`, because run pulls a missing image from a
        registry; the agent only runs images it built, so a missing one is an error.
        """
        if self.image_id(spec.image) is None:
            raise NotOnEngine(f"image {spec.image} not found on this server; build it first")
        tried: set[int] = set()
        while True:
            # Picking a port and creating the container that pins it (in its label) are one step
            # under the lock: the next pick lists that container, started or not. The start, the
            # slow part, runs outside it, so deploys of several apps start their containers at once.
            with self._ports_lock:
                container = self._create_on_free_port(spec, tried)
            try:
                container.start()
            except docker.errors.APIError as exc:
                self.remove(container.id, force=True)
                message = str(exc.explanation or exc)
                if "already allocated" in message or "address already in use" in message:
                    continue  # another engine user took it since the bind test: pick again
                raise EngineError(message) from exc
            return self.inspect(container.id)

    def _create_on_free_port(self, spec: ContainerSpec, tried: set[int]):
        used = self._used_ports() | tried
        for host_port in candidate_ports(self.port_range, used, secrets.randbelow(1 << 30)):
            if not port_is_free(host_port):
                continue
            tried.add(host_port)
            return self._create(spec, host_port)
        raise EngineError(f"no free port left in {self.port_range[0]}-{self.port_range[1]} "
                          "on 127.0.0.1 (TUGBOAT_PORT_RANGE)")

    def _create(self, spec: ContainerSpec, host_port: int | None):
        """The one place a container is created from a ContainerSpec, so an app's containers
        (port published on `host_port`) and one-off commands (`create_unpublished`: no port)
        run with the same settings (env, volumes, limits)."""
        published = {f"{spec.port}/tcp": ("127.0.0.1", host_port)} if host_port else {}
        labels = {**spec.labels, L.HOST_PORT: str(host_port)} if host_port else dict(spec.labels)
        try:
            return self.client.containers.create(
                spec.image, name=spec.name, detach=True, init=True,
                restart_policy={"Name": spec.restart_policy}, environment=dict(spec.env),
                labels=labels, ports=published, command=list(spec.command) or None,
                stop_signal=spec.stop_signal or "SIGTERM",
                volumes={volume: {"bind": path, "mode": "rw"} for volume, path in spec.volumes},
                **container_limits(spec.memory_bytes, spec.cpu_millis))
        except docker.errors.ImageNotFound as exc:
            raise NotOnEngine(f"image {spec.image} not found on this server; build it first") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def _used_ports(self) -> set[int]:
        """Ports pinned by or published for any managed container on the engine (every
        agent's, running or not): a stopped one gets its port back when it restarts. Read from
        one list call (labels and published ports are in it), not an inspect per container."""
        used = set()
        for summary in self.client.api.containers(all=True, filters={"label": [f"{L.MANAGED}=true"]}):
            pinned = (summary.get("Labels") or {}).get(L.HOST_PORT, "")
            if pinned.isdigit():
                used.add(int(pinned))
            used.update(p["PublicPort"] for p in summary.get("Ports") or () if p.get("PublicPort"))
        return used

    def start(self, container_id: str) -> None:
        """Start a stopped container again (same port, same volumes)."""
        try:
            self.client.api.start(container_id)
        except docker.errors.NotFound as exc:
            raise NotOnEngine(f"container {container_id} not found") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        try:
            self.client.api.update_container(container_id, restart_policy={"Name": policy})
        except docker.errors.NotFound as exc:
            raise NotOnEngine(f"container {container_id} not found") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def inspect(self, container_id: str) -> ContainerRecord:
        try:
            data = self.client.api.inspect_container(container_id)
        except docker.errors.NotFound as exc:
            raise NotOnEngine(f"container {container_id} not found") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return _record(data)

    def running_count(self) -> int:
        """How many of this agent's managed containers run: one list call, no inspect each
        (GetInfo answers with it, and must stay fast while the daemon is busy)."""
        filters = [f"{L.MANAGED}=true"]
        if self.agent_id:
            filters.append(f"{L.AGENT}={self.agent_id}")
        return len(self.client.api.containers(filters={"label": filters, "status": "running"}))

    def list(self, app: str | None = None, *, all_agents: bool = False) -> list[ContainerRecord]:
        """Managed containers (of this agent, optionally one app), newest first."""
        filters = [f"{L.MANAGED}=true"]
        if app:
            filters.append(f"{L.APP}={app}")
        if self.agent_id and not all_agents:
            filters.append(f"{L.AGENT}={self.agent_id}")
        records = []
        for summary in self.client.api.containers(all=True, filters={"label": filters}):
            try:
                records.append(self.inspect(summary["Id"]))
            except NotOnEngine:
                continue  # removed between list and inspect
        records.sort(key=lambda r: r.created, reverse=True)
        return records

    def logs_tail(self, container_id: str, lines: int = 20) -> list[str]:
        try:
            raw = self.client.api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except docker.errors.APIError:
            return []
        return raw.decode("utf-8", "replace").splitlines()

    def log_chunks(self, container_id: str, tail: int = 0) -> Iterator[bytes]:
        """A container's output so far (its last `tail` lines; 0: all), stdout and stderr in order,
        each line prefixed with Docker's timestamp, streamed: agent.log_archive copies it before
        a removal.

        Read in 64 KiB blocks and demultiplexed a block at a time (docker-py's `logs(stream=True)`
        reads a frame, one line, at a time). The daemon's own read of a json-file log is most of
        the cost (200,000 lines: ~5 s here, the same through curl), hence the tail."""
        api = self.client.api
        response = None
        try:
            response = api._get(api._url("/containers/{0}/logs", container_id), stream=True,
                                params={"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0,
                                        "tail": tail if tail > 0 else "all"})
            api._raise_for_status(response)
            blocks = response.iter_content(chunk_size=65536)
            if "raw-stream" in response.headers.get("Content-Type", ""):
                yield from blocks  # a TTY container: no frames
            else:
                yield from _frame_payloads(blocks)
        except docker.errors.NotFound as exc:
            raise NotOnEngine(f"container {container_id} not found") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        except OSError as exc:  # the connection dropped (requests' errors are OSErrors)
            raise EngineError(f"reading the logs of {container_id} failed: {exc}") from exc
        finally:
            if response is not None:
                response.close()  # also when the reader stops early: the connection goes back

    def stop(self, container_id: str, timeout: int) -> None:
        """Send the container's stop signal (set at creation), SIGKILL after `timeout` s."""
        try:
            self.client.api.stop(container_id, timeout=timeout)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def remove(self, container_id: str, *, force: bool = True) -> None:
        try:
            self.client.api.remove_container(container_id, force=force)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc):
                return
            raise EngineError(str(exc.explanation or exc)) from exc

    def version(self) -> str:
        return self.client.version().get("Version", "")

    # ---- OOM kills (agent.oom_watch, agent.builder) ------------------------------------------
    def oom_events(self, since: float) -> "OomEvents":
        """Every OOM kill in a managed container from `since` (unix time) on: the ones the
        daemon still buffers first, then live ones, until `close()`. Docker sends an `oom`
        event for any process of the container the kernel kills, the main one or a child."""
        try:
            # The build client: no read timeout, so a quiet hour does not end the stream.
            stream = self._build_api.events(
                since=since, decode=True,
                filters={"type": "container", "event": "oom", "label": [f"{L.MANAGED}=true"]})
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return OomEvents(stream)

    def oom_killed_in(self, container_id: str, since: float, until: float) -> bool:
        """Whether the kernel killed a process of that container for memory between the two
        unix times (from the daemon's buffered events; a build step's container is gone by the
        time its build fails, so its state cannot tell)."""
        try:
            events = self.client.api.events(since=since, until=until, decode=True,
                                            filters={"event": "oom", "container": container_id})
            return any(True for _ in events)
        except docker.errors.APIError:
            return False

    # ---- one-off commands (agent.one_off) ---------------------------------------------------
    def create_unpublished(self, spec: ContainerSpec) -> str:
        """Create (not start) a container that publishes no port: a one-off command's. Its id."""
        if self.image_id(spec.image) is None:
            raise NotOnEngine(f"image {spec.image} not found on this server; build it first")
        return self._create(spec, None).id

    def follow_output(self, container_id: str) -> Iterator[bytes]:
        """stdout and stderr as the container writes them, from its start until it exits (raw
        chunks, not lines); ends when the container exits, is killed or removed."""
        try:
            yield from self.client.api.logs(container_id, stdout=True, stderr=True, stream=True,
                                            follow=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def wait_exit(self, container_id: str) -> int:
        """Block until the container has exited; its exit code."""
        try:
            return int(self.client.api.wait(container_id).get("StatusCode", -1))
        except docker.errors.NotFound as exc:
            raise NotOnEngine(f"container {container_id} not found") from exc
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    def kill(self, container_id: str) -> None:
        """SIGKILL now; nothing when it is not running (any more) or gone."""
        try:
            self.client.api.kill(container_id)
        except docker.errors.APIError:
            pass

    def labelled(self, *labels: str) -> list[str]:
        """Ids of every container (running or not) carrying all `labels` ("key=value")."""
        try:
            return [c["Id"] for c in self.client.api.containers(all=True, filters={"label": list(labels)})]
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc

    # ---- volumes ------------------------------------------------------------------------
    def volume(self, name: str) -> VolumeRecord | None:
        """The named volume, or None when there is none of that name."""
        try:
            data = self.client.api.inspect_volume(name)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return VolumeRecord(data["Name"], dict(data.get("Labels") or {}))

    def create_volume(self, name: str, labels: dict[str, str]) -> VolumeRecord:
        """Create the named volume (local driver). Docker answers with the existing one when a
        volume of that name was made meanwhile: the caller checks the labels it returns."""
        try:
            data = self.client.api.create_volume(name, driver="local", labels=labels)
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return VolumeRecord(data["Name"], dict(data.get("Labels") or {}))

    def volumes(self, app: str) -> list[VolumeRecord]:
        """The volumes labelled managed + `app` (chosen by label, never by name)."""
        filters = {"label": [f"{L.MANAGED}=true", f"{L.APP}={app}"]}
        try:
            found = self.client.api.volumes(filters=filters).get("Volumes") or []
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc
        return [VolumeRecord(v["Name"], dict(v.get("Labels") or {})) for v in found]

    def remove_volume(self, name: str) -> None:
        try:
            self.client.api.remove_volume(name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from exc


class OomEvents:
    """A live stream of (container id, unix time) OOM kills; `close()` ends it from any thread."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[tuple[str, float]]:
        for event in self._stream:
            container_id = event.get("id") or (event.get("Actor") or {}).get("ID") or ""
            nanos = event.get("timeNano") or int(event.get("time") or 0) * 1_000_000_000
            if container_id:
                yield container_id, nanos / 1e9

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # already closed, or the connection is gone
            pass


def _frame_payloads(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The payloads of Docker's multiplexed frames (8-byte header: stream, 0, 0, 0, big-endian
    length), joined per block read, whatever the blocks' boundaries."""
    buf = bytearray()
    for block in blocks:
        buf += block
        pos, end, out = 0, len(buf), []
        while end - pos >= 8:
            length = int.from_bytes(buf[pos + 4:pos + 8], "big")
            if end - pos < 8 + length:
                break
            out.append(bytes(buf[pos + 8:pos + 8 + length]))
            pos += 8 + length
        del buf[:pos]
        if out:
            yield b"".join(out)


def split_timestamp(line: str) -> tuple[datetime, str]:
    """(time, text) of a log line Docker printed with `timestamps=1`."""
    stamp, _, text = line.partition(" ")
    return _parse_time(stamp), text.rstrip("\r")


def _record(data: dict) -> ContainerRecord:
    labels = data.get("Config", {}).get("Labels") or {}
    host_port = None
    for bindings in (data.get("NetworkSettings", {}).get("Ports") or {}).values():
        for binding in bindings or []:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                host_port = int(binding["HostPort"])
                break
        if host_port:
            break
    try:
        deployment_id = int(labels.get(L.DEPLOYMENT, "0"))
    except ValueError:
        deployment_id = 0
    try:
        pinned_port = int(labels.get(L.HOST_PORT, "")) or None
    except ValueError:
        pinned_port = None
    state = data.get("State", {})
    health = state.get("Health") or {}
    health_log = health.get("Log") or []
    return ContainerRecord(
        id=data["Id"], name=data.get("Name", "").lstrip("/"), app=labels.get(L.APP, ""),
        deployment_id=deployment_id, commit_sha=labels.get(L.COMMIT, ""),
        image=data.get("Config", {}).get("Image", ""), state=state.get("Status", ""),
        exit_code=int(state.get("ExitCode") or 0),
        restart_count=int(data.get("RestartCount") or 0), host_port=host_port or pinned_port,
        created=_parse_time(data.get("Created", "")), labels=dict(labels),
        oom_killed=bool(state.get("OOMKilled")),
        finished_at=(_parse_time(state["FinishedAt"])
                     if not (state.get("FinishedAt") or "0001").startswith("0001") else None),
        health_status=health.get("Status") or "",
        health_output=(health_log[-1].get("Output") or "").strip() if health_log else "",
        stop_signal=data.get("Config", {}).get("StopSignal") or "",
        restart_policy=((data.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "",
        pinned_port=pinned_port)
