"""The bridge's view of the control plane: a gRPC adapter with short-lived in-memory caches.

GitHub allows a delivery 10 s, and a burst of pushes should each be answered in milliseconds, so
the two look-ups every delivery needs are cached briefly:
  * the app list (ListApps, all pages) for `apps_ttl` seconds; a delivery that matches no app asks
    again (at most every `negative_ttl` seconds), so a freshly created app is never missed for long;
  * each app's webhook secret (GetAppWebhook) for `secret_ttl` seconds; a signature that fails
    against a cached secret is checked once more against a fresh one (the secret may have changed).
Deployments are never cached: CreateDeployment is called for every verified push, and the control
plane's idempotency key (`<delivery>:<app>`) makes redeliveries create nothing. At most
`max_concurrent_creates` CreateDeployment calls are in flight at once: the control plane serializes
its writes anyway (one SQLite writer), and waiting here, in order, gives a burst of pushes an even
latency instead of leaving a few of them to lose the database's lock-retry lottery for seconds.

With several API replicas listed, the connection (client.connection) goes to the first that answers,
and the two look-ups are retried once on UNAVAILABLE. CreateDeployment is not: one that fails with
UNAVAILABLE may have reached a replica that died, so the delivery is answered 503 and its redelivery
(same idempotency key) creates the deployment at most once.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Callable, Generic, TypeVar

import grpc
from serversinc.v1 import app_service_pb2, deployment_pb2, deployment_service_pb2

from bridge.handler import AppGone, Created, DeployRequest, Rejected, Unavailable
from bridge.matching import AppRef
from client.connection import Connection
from client.errors import error_info
from client.pages import all_pages

UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
               grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
               grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}

T = TypeVar("T")


class TTLValue(Generic[T]):
    """One cached value with its fetch time; concurrent misses share a single fetch."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._fetched = float("-inf")

    def get(self, fetch: Callable[[], T], max_age: float | None = None) -> T:
        max_age = self.ttl if max_age is None else max_age
        if self._clock() - self._fetched <= max_age:
            return self._value  # type: ignore[return-value]
        with self._lock:
            if self._clock() - self._fetched <= max_age:  # another thread fetched it meanwhile
                return self._value  # type: ignore[return-value]
            value = fetch()
            self._value, self._fetched = value, self._clock()
            return value


class ControlPlaneClient:
    """Implements handler.Backend (and the secret look-up the HTTP edge needs) over gRPC."""

    def __init__(self, connection: Connection, *, apps_ttl: float = 2.0, negative_ttl: float = 0.25,
                 secret_ttl: float = 10.0, timeout: float = 5.0, max_concurrent_creates: int = 2):
        self.connection = connection
        self._creates = threading.BoundedSemaphore(max(1, max_concurrent_creates))
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        self.secret_ttl = secret_ttl
        self._apps: TTLValue[list[AppRef]] = TTLValue(apps_ttl)
        self._secrets: dict[str, TTLValue[str | None]] = {}
        self._secrets_lock = threading.Lock()

    # -- errors -----------------------------------------------------------------------------

    @staticmethod
    def _unavailable(err: grpc.RpcError) -> Unavailable:
        return Unavailable(f"{err.code().name}: {err.details()}")

    # -- apps -------------------------------------------------------------------------------

    def _list_apps(self) -> list[AppRef]:
        try:
            apps = all_pages(functools.partial(self.connection.apps.ListApps, timeout=self.timeout),
                             lambda token: app_service_pb2.ListAppsRequest(page_size=500, page_token=token), "apps")
        except grpc.RpcError as err:
            raise self._unavailable(err) from err
        return [AppRef(a.name, a.repo_url, a.branch) for a in apps]

    def apps(self, refresh: bool = False) -> list[AppRef]:
        return self._apps.get(self._list_apps, self.negative_ttl if refresh else None)

    def app(self, name: str) -> AppRef | None:
        for app in self.apps():
            if app.name == name:
                return app
        for app in self.apps(refresh=True):
            if app.name == name:
                return app
        return None

    # -- secrets ----------------------------------------------------------------------------

    def _fetch_secret(self, name: str) -> str | None:
        try:
            hook = self.connection.apps.GetAppWebhook(
                app_service_pb2.GetAppWebhookRequest(name=name), timeout=self.timeout)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise self._unavailable(err) from err
        return hook.secret or None

    def webhook_secret(self, name: str, max_age: float | None = None) -> str | None:
        """The app's webhook secret (cached at most `max_age` s, default `secret_ttl`), None for
        an unknown app. Unknown apps are not cached: a new app's first delivery must not 404."""
        with self._secrets_lock:
            entry = self._secrets.get(name)
            if entry is None:
                entry = self._secrets[name] = TTLValue(self.secret_ttl)
        secret = entry.get(lambda: self._fetch_secret(name), max_age)
        if secret is None:
            with self._secrets_lock:
                self._secrets.pop(name, None)
        return secret

    # -- deployments ------------------------------------------------------------------------

    def create_deployment(self, request: DeployRequest) -> Created:
        started = time.monotonic()
        if not self._creates.acquire(timeout=self.timeout):
            raise Unavailable(f"control plane busy: no CreateDeployment slot within {self.timeout:g} s")
        try:
            return self._create(request, max(0.5, self.timeout - (time.monotonic() - started)))
        finally:
            self._creates.release()

    def _create(self, request: DeployRequest, timeout: float) -> Created:
        try:
            dep = self.connection.deployments.CreateDeployment(
                deployment_service_pb2.CreateDeploymentRequest(
                    parent=f"apps/{request.app}", rebuild=True, commit_sha=request.commit_sha,
                    trigger=deployment_pb2.DEPLOYMENT_TRIGGER_WEBHOOK, request_id=request.request_id,
                    delivery_id=request.delivery_id, pusher=request.pusher,
                    commit_message=request.commit_message, supersede_queued=True,
                    before_commit_sha=request.before_commit_sha),
                timeout=timeout)
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.ALREADY_EXISTS:
                return Created(request.app, _existing_deployment(err), duplicate=True)
            if code == grpc.StatusCode.NOT_FOUND:
                raise AppGone(request.app) from err
            if code in UNREACHABLE:
                raise self._unavailable(err) from err
            raise Rejected(err.details() or code.name) from err
        if dep.state == deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED:
            return Created(request.app, dep.name, ignored=dep.failure_reason or "older than the newest push")
        return Created(request.app, dep.name)


def _existing_deployment(err: grpc.RpcError) -> str:
    """The deployment an earlier request with the same idempotency key created (ErrorInfo)."""
    info = error_info(err)
    return info.metadata.get("deployment", "") if info else ""
