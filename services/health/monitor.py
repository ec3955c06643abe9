"""The health monitor: polls each server's agent for its containers and stores what it saw.

An app is judged over every server its serving release runs on (and, during a rollout, the ones
the rollout reached), each server asked once per round whatever number of apps it runs.

One thread per control plane, one round every `period` seconds. A round asks every server that
runs a serving release at once (a bounded pool, each call with a deadline shorter than the period),
so a slow or dead server delays no other and no API call ever waits on an agent: GetApp and
ListApps read the stored records only. A server that does not answer leaves its apps' last
observation in place, marked stale; an app some of whose servers answered is judged on those,
marked stale too (assess.observe_app: never better than before, never into DOWN). A change into
or out of DOWN is stored and put in the notification outbox in one transaction, so it is
announced once, and never lost to a crash.
A new OOM kill ("app.oom") is announced the same way; the last one announced is read from the
outbox itself (services.health.repository.last_oom_announced), after the app's health row is
written, so a second monitor (PostgreSQL row lock, SQLite's write lock) sees it and says nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from services.agents.port import ContainerView
from services.certificates.relay import CertificatesOf, relay
from services.db.models import App, utcnow
from services.db.session import Database
from services.health import assess
from services.health import repository as repo
from services.notifications import outbox

log = logging.getLogger(__name__)

# Servers asked at the same time in one round.
MAX_PARALLEL = 8


class HealthMonitor:
    def __init__(self, db: Database, containers_of: Callable[[str, float], list[ContainerView]], *,
                 period: float = 5.0, on_announced: Callable[[], None] = lambda: None,
                 certificates_of: CertificatesOf | None = None):
        """`containers_of(server, timeout)` lists every managed container on that server;
        `certificates_of(server, timeout)`, when given, its domains' certificates, relayed into
        the read model in the same round (services.certificates.relay)."""
        self.db = db
        self.containers_of = containers_of
        self.certificates_of = certificates_of
        self.period = period
        self.on_announced = on_announced
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="health")
        self._thread = threading.Thread(target=self._loop, name="health-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.poll()
            except Exception:
                log.exception("health poll failed")

    def poll(self) -> int:
        """One round; returns how many announcements it queued."""
        with self.db.read() as s:
            targets = repo.targets(s)
        by_server: dict[str, list[repo.Target]] = defaultdict(list)
        for t in targets:
            for server in t.servers:
                by_server[server].append(t)
        timeout = max(0.5, min(5.0, self.period * 0.8))
        futures = {name: self._pool.submit(self.containers_of, name, timeout) for name in by_server}
        relays = []
        if self.certificates_of is not None:
            relays = [self._pool.submit(relay, self.db, self.certificates_of, name,
                                        {t.app: t.app_id for t in group}, timeout)
                      for name, group in by_server.items()]
        answers: dict[str, list[ContainerView]] = {}
        for name, future in futures.items():
            try:
                answers[name] = future.result()
            except Exception as err:  # unreachable, refused, or no longer registered: all "no answer"
                log.info("health: server %s did not answer: %s", name, err)
        silent = [t.app_id for t in targets if t.servers and not any(n in answers for n in t.servers)]
        if silent:
            with self.db.session() as s:
                repo.mark_stale(s, silent)
        announced = self._store([t for t in targets if t.app_id not in silent], answers)
        for future in relays:
            future.result()
        if announced:
            self.on_announced()
        return announced

    def _store(self, targets: list[repo.Target], answers: dict[str, list[ContainerView]]) -> int:
        """Judges each app over the servers that answered (assess.observe_app) and stores it."""
        if not targets:
            return 0
        by_server_app: dict[tuple[str, str], list[ContainerView]] = defaultdict(list)
        for server, containers in answers.items():
            for c in containers:
                by_server_app[(server, c.app)].append(c)
        announced = 0
        with self.db.session() as s:
            previous = repo.previous(s, [t.app_id for t in targets])
            now = utcnow()
            for t in targets:
                before = previous.get(t.app_id)
                silent = {n for n in t.servers if n not in answers}
                obs = assess.observe_app(t.deployment_id, list(t.watches),
                                         {n: by_server_app.get((n, t.app), []) for n in t.servers},
                                         before, now, memory_limit=t.memory_limit, silent=silent)
                moved = repo.record(s, t.app_id, before.health if before else None, obs, now, stale=bool(silent))
                event = assess.announcement(before.health if before else None, obs.health) if moved else None
                if event is not None:
                    app = s.get(App, t.app_id)
                    log.warning("app %s: %s %s", t.app, event, obs.detail)
                    announced += outbox.enqueue_health(s, app, t.deployment_id, str(event), obs.detail)
                if obs.last_oom is not None:
                    announced += self._announce_oom(s, s.get(App, t.app_id), t, obs, now)
        return announced

    @staticmethod
    def _announce_oom(s, app: App | None, t: repo.Target, obs: assess.Observation, now) -> int:
        if obs.last_oom is None or not assess.oom_news(obs, repo.last_oom_announced(s, t.deployment_id), now):
            return 0
        log.warning("app %s: %s %s", t.app, assess.Announcement.OOM, obs.detail)
        return outbox.enqueue_health(s, app, t.deployment_id, str(assess.Announcement.OOM), obs.detail,
                                     oom={"kills": obs.oom_kills, "last_time": obs.last_oom.isoformat()})
