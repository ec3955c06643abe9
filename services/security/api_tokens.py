"""API tokens: create (secret shown once), list, revoke, and authenticate a presented secret."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.core import paging
from services.core import validation as v
from services.core.errors import ApiTokenAlreadyExists, ApiTokenNotFound
from services.db.models import ApiToken, utcnow
from services.db.session import Database
from services.security import tokens
from services.security.files import write_private

# last_used_at is a hint for people, not an audit log: write it at most this often per token.
_TOUCH_EVERY = timedelta(minutes=1)


class ApiTokenService:
    # A token checked in the last moment is not read again: every API call authenticates, and
    # reading the table each time was a visible part of a call's cost. Revoking through this
    # process clears the cache at once; another control-plane process sees it within this time.
    CACHE_SECONDS = 2.0

    def __init__(self, db: Database):
        self.db = db
        self._recent: dict[str, tuple[str, float]] = {}  # digest -> (token name, cached until)
        self._lock = threading.Lock()

    def create(self, name: str) -> tuple[ApiToken, str]:
        v.resource_name(name, "token")
        secret = tokens.new_secret("ssi")
        try:
            with self.db.session() as s:
                if s.scalar(select(ApiToken).where(ApiToken.name == name)):
                    raise ApiTokenAlreadyExists(f"API token {name!r} already exists")
                token = ApiToken(name=name, token_hash=tokens.digest(secret), created_at=utcnow())
                s.add(token)
        except IntegrityError:
            raise ApiTokenAlreadyExists(f"API token {name!r} already exists") from None
        return token, secret

    def list(self, *, page_size: int, page_token: str) -> tuple[list[ApiToken], str]:
        size = paging.page_size(page_size, default=50, maximum=500)
        after = paging.decode(page_token).get("after", "")
        with self.db.read() as s:
            rows = list(s.scalars(select(ApiToken).where(ApiToken.name > after).order_by(ApiToken.name).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        return rows, paging.encode({"after": rows[-1].name}) if more else ""

    def revoke(self, name: str) -> None:
        with self.db.session() as s:
            token = s.scalar(select(ApiToken).where(ApiToken.name == name))
            if token is None:
                raise ApiTokenNotFound(f"API token {name!r} not found")
            s.delete(token)
        with self._lock:
            self._recent.clear()

    def recently_authenticated(self, secret: str) -> str | None:
        """The token's name when `secret` was authenticated within CACHE_SECONDS, else None (then
        ask `authenticate`). Never touches the database, so an event loop may call it."""
        if not secret:
            return None
        digest = tokens.digest(secret)
        with self._lock:
            cached = self._recent.get(digest)
        return cached[0] if cached and cached[1] > time.monotonic() else None

    def authenticate(self, secret: str) -> str | None:
        """The token's name when `secret` is a live token, else None. Revocation applies at once."""
        if not secret:
            return None
        digest = tokens.digest(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._recent.get(digest)
        if cached and cached[1] > now:
            return cached[0]
        with self.db.read() as s:
            token = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if token is None or not tokens.matches(secret, token.token_hash):
            return None
        used = utcnow()
        if token.last_used_at is None or used - token.last_used_at > _TOUCH_EVERY:
            with self.db.session() as s:
                row = s.get(ApiToken, token.id)
                if row is not None:
                    row.last_used_at = used
        with self._lock:
            self._recent[digest] = (token.name, now + self.CACHE_SECONDS)
        return token.name

    def bootstrap(self, token_file: Path) -> None:
        """With no token at all, creates "admin" and writes its secret to `token_file` (0600), which
        the CLI and dashboard on this machine read. Never overwrites a token that exists."""
        with self.db.read() as s:
            if s.scalar(select(ApiToken.id).limit(1)) is not None:
                return
        _, secret = self.create("admin")
        write_private(token_file, secret + "\n")
