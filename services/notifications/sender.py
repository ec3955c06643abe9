"""Delivers the outbox: signed POSTs, retried with exponential back-off, given up after a while.

One thread per control plane. It wakes when the recorder adds notifications and otherwise sleeps
until the next retry is due. With several replicas each notification is claimed by one sender
before it is posted (services.notifications.outbox.claim_due), so it is delivered once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from services.db.models import utcnow
from services.db.session import Database
from services.notifications import http, outbox
from services.security.secretbox import SecretBox

log = logging.getLogger(__name__)


class NotificationSender:
    MAX_ATTEMPTS = 8
    # How long a claimed notification is this sender's; well over a batch of posts at
    # http.TIMEOUT_SECONDS each.
    CLAIM_SECONDS = 300.0

    def __init__(self, db: Database, box: SecretBox, *, backoff_seconds: float = 2.0, max_backoff: float = 600.0,
                 post=http.post):
        self.db = db
        self.box = box
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff
        self._post = post
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.send_due()
            except Exception:
                log.exception("sending notifications failed")
                sent = 0
            if sent:
                continue
            with self.db.read() as s:
                when = outbox.next_due(s)
            wait = 30.0 if when is None else max(0.0, min(30.0, (when - utcnow()).total_seconds()))
            self._wake.wait(wait)
            self._wake.clear()

    def send_due(self) -> int:
        # Claimed for longer than a post can take, so no other replica's sender posts it meanwhile.
        hold = timedelta(seconds=self.CLAIM_SECONDS)
        with self.db.session() as s:
            batch = [(n.id, n.url, n.body, n.attempts, n.deployment_id)
                     for n in outbox.claim_due(s, utcnow() + hold)]
        secrets: dict[int, str] = {}
        for notification_id, url, body, attempts, deployment_id in batch:
            secret = self._secret_for(deployment_id, secrets)
            data = body.encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "serversinc-notifier",
                "X-Serversinc-Delivery": str(notification_id),
                "X-Serversinc-Signature-256": http.sign(secret, data),
            }
            ok, error = self._post(url, data, headers)
            attempts += 1
            with self.db.session() as s:
                if ok:
                    outbox.record(s, notification_id, status="delivered", attempts=attempts, last_error="")
                elif attempts >= self.MAX_ATTEMPTS:
                    outbox.record(s, notification_id, status="failed", attempts=attempts, last_error=error)
                    log.warning("gave up notifying %s for deployment %s: %s", url, deployment_id, error)
                else:
                    delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
                    outbox.record(s, notification_id, attempts=attempts, last_error=error,
                                  next_attempt_at=utcnow() + timedelta(seconds=delay))
        return len(batch)

    def _secret_for(self, deployment_id: int, cache: dict) -> str:
        if deployment_id not in cache:
            with self.db.read() as s:
                app = outbox.app_of(s, deployment_id)
                cache[deployment_id] = self.box.decrypt(app.notification_secret) if app else ""
        return cache[deployment_id]
