"""The certificate manager: issue, renew, upload and put certificates in service without a reload.

Apps say which domains they have and how they want HTTPS (`want`: on every deploy). One thread
asks the CA for what is due (`agent.cert_policy`: new domains now, renewals at 2/3 of the
lifetime, failures after an exponential backoff), one domain at a time.

Invariant: a certificate is written to its file and listed in the crt-list *before* the runtime
API is told (`new/set/commit ssl cert`, `add ssl crt-list`), and the redirect/HSTS maps the same
way, all under the front door's render lock once the latest render is the one serving: a reload
or a restart of HAProxy from then on reads the same thing the runtime API was given, so nothing
put in service is ever lost, and nothing needs a reload.

A domain with no certificate in service is served over HTTP only (no redirect, no HSTS) and its
status says why. A status is stored (and so reported) only once what it says is in service:
certificate and maps first. Private keys live in the TLS folder (0600) and only travel to HAProxy's admin
socket; statuses, logs and errors carry none.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from agent import cert_policy as policy
from agent.acme_issuer import AcmeFailure, AcmeIssuer, AcmeSettings
from agent.cert_policy import DomainStatus
from agent.frontdoor_files import FrontDoorFiles
from agent.haproxy_process import wait_generation
from agent.haproxy_runtime import RuntimeAPI
from agent.router import RouterError
from agent.tls_files import TlsFiles, bundle_pem, cert_info, check_pair
from common import rules
from common.files import write_atomic

log = logging.getLogger(__name__)

IDLE_WAKE = 60.0  # at most this long between looks at the schedule


class CertificateError(ValueError):
    """A certificate request that cannot be carried out (bad upload, unknown domain)."""


@dataclass(frozen=True)
class AppTls:
    """How an app wants HTTPS: its domains, the HTTP -> HTTPS redirect, HSTS max-age (0: off)."""

    domains: tuple[str, ...] = ()
    https_redirect: bool = False
    hsts_seconds: int = 0

    def to_json(self) -> dict:
        return {"domains": list(self.domains), "https_redirect": self.https_redirect,
                "hsts_seconds": self.hsts_seconds}

    @classmethod
    def from_json(cls, data: dict) -> "AppTls":
        return cls(tuple(data.get("domains") or ()), bool(data.get("https_redirect")),
                   int(data.get("hsts_seconds") or 0))


def _timestamp(value: dt.datetime) -> float:
    return value.timestamp()


class CertificateManager:
    """Certificates of the front door in `files` (see module docstring)."""

    def __init__(self, front: FrontDoorFiles, https_port: int, acme: AcmeSettings, *,
                 issuer: AcmeIssuer | None = None, clock: Callable[[], float] = time.time) -> None:
        self.front = front
        self.https_port = https_port
        self.acme = acme
        self.tls = TlsFiles(front.state_dir)
        self.api = RuntimeAPI(front.admin_socket)
        self.issuer = issuer or (AcmeIssuer(acme, self.tls.acme_dir) if acme.enabled else None)
        self.clock = clock
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempting = ""
        self.tls.ensure()
        self._apps, self._domains = self._load()

    # -- state
    def _load(self) -> tuple[dict[str, AppTls], dict[str, DomainStatus]]:
        try:
            data = json.loads(self.tls.state_file.read_text())
        except (OSError, ValueError):
            return {}, {}
        apps = {name: AppTls.from_json(v) for name, v in (data.get("apps") or {}).items()}
        domains = {d: DomainStatus.from_json(v) for d, v in (data.get("domains") or {}).items()}
        return apps, domains

    def _save(self) -> None:
        write_atomic(self.tls.state_file, json.dumps({
            "apps": {k: v.to_json() for k, v in sorted(self._apps.items())},
            "domains": {k: v.to_json() for k, v in sorted(self._domains.items())}}, indent=1))

    # -- lifecycle
    def start(self) -> None:
        """Bring what is on disk into service (maps may be stale after a crash) and start the
        scheduler thread."""
        try:
            self._sync_maps()
        except (RouterError, OSError) as exc:
            log.warning("could not bring the HTTPS maps up to date: %s", exc)
        self._thread = threading.Thread(target=self._run, name="certificates", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    # -- what apps ask for
    def want(self, app: str, tls: AppTls) -> None:
        """The app's domains and HTTPS settings (every deploy says them again). New domains are
        due at once; a domain that left the app is taken out of service."""
        try:
            rules.hsts_seconds(tls.hsts_seconds)
        except rules.RuleError as exc:
            raise CertificateError(str(exc)) from None
        now = self.clock()
        with self._lock:
            gone = set(self._apps.get(app, AppTls()).domains) - set(tls.domains)
            self._apps[app] = tls
            for domain in tls.domains:
                status = policy.wanted(self._domains.get(domain), domain, app, now)
                if status.state == policy.PENDING and status.source == policy.SOURCE_ACME:
                    reason = self._cannot_issue(domain)
                    if reason:
                        status = policy.skipped(status, reason)
                elif status.state == policy.SKIPPED and not self._cannot_issue(domain):
                    status = replace(status, state=policy.PENDING, last_error="", next_attempt=now)
                self._domains[domain] = status
            self._save()
        for domain in gone:
            self._retire(domain)
        self._sync_maps()
        self._wake.set()

    def forget(self, app: str) -> None:
        """The app is removed: its certificates leave service (files and keys deleted)."""
        with self._lock:
            tls = self._apps.pop(app, None)
            self._save()
        for domain in (tls.domains if tls else ()):
            self._retire(domain)
        self._sync_maps()

    def upload(self, app: str, domain: str, cert_pem: bytes, key_pem: bytes) -> DomainStatus:
        """The user's own certificate for one of the app's domains, in service now; ACME leaves
        that domain alone from then on."""
        with self._lock:
            if domain not in self._apps.get(app, AppTls()).domains:
                raise CertificateError(f"{domain} is not a domain of app {app}: deploy the app "
                                       "with it first")
        try:
            info = check_pair(cert_pem, key_pem, domain)
        except ValueError as exc:
            raise CertificateError(f"certificate for {domain} refused: {exc}") from None
        self._install(domain, bundle_pem(cert_pem, key_pem))
        self._sync_maps()
        with self._lock:
            status = policy.uploaded(self._domains.get(domain), domain, app, issuer=info.issuer,
                                     serial=info.serial, not_before=_timestamp(info.not_before),
                                     not_after=_timestamp(info.not_after))
            self._domains[domain] = status
            self._save()
        return status

    def statuses(self, app: str = "") -> list[DomainStatus]:
        with self._lock:
            return [s for d, s in sorted(self._domains.items()) if not app or s.app == app]

    def app_tls(self, app: str) -> AppTls:
        with self._lock:
            return self._apps.get(app, AppTls())

    # -- the scheduler
    def _cannot_issue(self, domain: str) -> str:
        if not self.acme.enabled or self.issuer is None:
            return "ACME is off on this agent (TUGBOAT_ACME_DIRECTORY=off): upload a certificate"
        if self.acme.public and policy.reserved_name(domain):
            return (f"{domain} is a reserved name that no public CA certifies: upload a "
                    "certificate, or use a private ACME directory")
        return ""

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            with self._lock:
                due = [s.domain for s in self._domains.values() if policy.due(s, now)
                       and s.domain in self._apps.get(s.app, AppTls()).domains]
                upcoming = [s.next_attempt for s in self._domains.values()
                            if s.next_attempt > now and not policy.due(s, now)]
            for domain in due:
                if self._stop.is_set():
                    return
                self.attempt(domain)
            if due:
                continue
            wait = min([IDLE_WAKE] + [max(0.05, t - now) for t in upcoming])
            self._wake.wait(wait)
            self._wake.clear()

    def attempt(self, domain: str) -> DomainStatus:
        """One ACME order for `domain`; its outcome recorded and scheduled."""
        with self._lock:
            status = self._domains[domain]
        self._attempting = domain
        try:
            issued = self.issuer.issue(domain, self._answer, self._withdraw)
            info = cert_info(issued.fullchain_pem)
            self._install(domain, bundle_pem(issued.fullchain_pem, issued.key_pem))
        except AcmeFailure as exc:
            log.warning("certificate for %s not issued: %s", domain, exc)
            status = policy.after_failure(status, str(exc), self.clock(),
                                          rate_limited=exc.rate_limited, base=self.acme.retry_base)
        except (RouterError, OSError) as exc:
            log.warning("certificate for %s issued but not put in service: %s", domain, exc)
            status = policy.after_failure(status, f"front door refused the certificate: {exc}",
                                          self.clock(), base=self.acme.retry_base)
        else:
            status = policy.after_success(status, issuer=info.issuer, serial=info.serial,
                                          not_before=_timestamp(info.not_before),
                                          not_after=_timestamp(info.not_after))
            log.info("certificate for %s in service (serial %s, valid until %s)", domain,
                     info.serial, info.not_after.isoformat())
        finally:
            self._attempting = ""
        # The redirect/HSTS maps first: a state is reported only once what it means serves.
        self._sync_maps()
        with self._lock:
            if domain in self._domains:
                self._domains[domain] = replace(status, app=self._domains[domain].app)
                self._save()
        return status

    # -- the front door
    def _runtime(self, change: Callable[[], None]) -> None:
        """Run `change` (files first, then the runtime API) under the render lock, once the
        latest render is the one serving (see the module's invariant)."""
        with self.front.render_lock():
            try:
                generation = int(self.front.generation_file.read_text().strip() or 0)
            except (OSError, ValueError):
                generation = 0
            wait_generation(self.api, generation)
            change()

    def _answer(self, token: str, key_authorization: str) -> None:
        def change():
            entries = self._map_entries(self.tls.challenges_map)
            entries[token] = key_authorization
            self.tls.write_map(self.tls.challenges_map, entries)
            self.api.set_map(str(self.tls.challenges_map), token, key_authorization)
        self._runtime(change)

    def _withdraw(self, token: str) -> None:
        def change():
            entries = self._map_entries(self.tls.challenges_map)
            entries.pop(token, None)
            self.tls.write_map(self.tls.challenges_map, entries)
            self.api.del_map(str(self.tls.challenges_map), token)
        self._runtime(change)

    def _install(self, domain: str, bundle: bytes) -> None:
        def change():
            path = self.tls.write_cert(domain, bundle)
            self.tls.list_cert(path)
            self.api.put_cert(str(path), bundle.decode(), str(self.tls.crt_list))
        self._runtime(change)

    def _retire(self, domain: str) -> None:
        """Out of service and off the disk (the key with it)."""
        path = self.tls.cert_path(domain)

        def change():
            if self.tls.unlist_cert(path):
                self.api.command(f"del ssl crt-list {self.tls.crt_list} {path}")
                self.api.command(f"del ssl cert {path}")
            path.unlink(missing_ok=True)
        try:
            self._runtime(change)
        except (RouterError, OSError) as exc:
            log.warning("could not take the certificate of %s out of service: %s", domain, exc)
        with self._lock:
            status = self._domains.get(domain)
            still = any(domain in t.domains for t in self._apps.values())
            if status is not None and not still:
                del self._domains[domain]
                self._save()

    @staticmethod
    def _map_entries(path) -> dict[str, str]:
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split(" ", 1) for line in lines if " " in line)

    def _wanted_maps(self) -> tuple[dict[str, str], dict[str, str]]:
        """redirect.map and hsts.map as they should be: only hosts whose certificate serves."""
        in_service = self.tls.in_service()
        redirect, hsts = {}, {}
        with self._lock:
            for tls in self._apps.values():
                for domain in tls.domains:
                    if domain not in in_service:
                        continue
                    if tls.https_redirect:
                        redirect[domain] = str(self.https_port)
                    if tls.hsts_seconds:
                        hsts[domain] = f"max-age={tls.hsts_seconds}"
        return redirect, hsts

    def _sync_maps(self) -> None:
        redirect, hsts = self._wanted_maps()

        def change():
            for path, wanted in ((self.tls.redirect_map, redirect), (self.tls.hsts_map, hsts)):
                before = self._map_entries(path)
                self.tls.write_map(path, wanted)
                for key, value in wanted.items():
                    if before.get(key) != value:
                        self.api.set_map(str(path), key, value)
                for key in set(before) - set(wanted):
                    self.api.del_map(str(path), key)
        self._runtime(change)


def domains_of(values: Iterable[str], app: str) -> tuple[str, ...]:
    """The domains that can have certificates: not the app's own `<app>.localhost`."""
    return tuple(d for d in values if not d.endswith(".localhost") and d != "localhost")
