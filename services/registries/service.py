"""Registries: set, list and delete the registry that builds are published to.

One registry at a time: a build is pushed to exactly one place, and every server pulls it from
there, so a second address is refused (REGISTRY_ALREADY_SET) until the first is deleted; setting
the same address again replaces its credentials. The password is stored encrypted (SecretBox) and
only ever leaves this module decrypted for a push or a pull (`credentials`), never in a listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common import registry as registry_rules
from common.rules import RuleError
from services.core import paging
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.db.models import Registry, utcnow
from services.db.session import Database
from services.registries import repository as repo
from services.security.secretbox import SecretBox


@dataclass(frozen=True)
class RegistryView:
    """A registry as callers see it: whether it has a password, never the password."""

    address: str
    username: str
    has_password: bool
    created: datetime | None
    updated: datetime | None


def check_address(address: str) -> str:
    """The address normalised (lower case), or InvalidArgument saying what a valid one looks like."""
    try:
        return registry_rules.address(address)
    except RuleError as exc:
        raise InvalidArgument(str(exc), field="address") from None


def _check_username(username: str) -> None:
    if len(username) > 255 or ":" in username or any(not c.isprintable() or c.isspace() for c in username):
        raise InvalidArgument("registry username must be at most 255 printable characters, without spaces or ':'",
                              field="username")


def _view(row: Registry) -> RegistryView:
    return RegistryView(row.address, row.username or "", bool(row.password), row.created_at, row.updated_at)


class RegistryService:
    def __init__(self, db: Database, box: SecretBox):
        self.db = db
        self.box = box

    def set(self, address: str, *, username: str = "", password: str = "") -> RegistryView:
        """Creates the registry, or replaces the credentials of the one with this address."""
        address = check_address(address)
        _check_username(username)
        if password and not username:
            raise InvalidArgument("a registry password needs a username", field="username")
        if len(password) > 4096:
            raise InvalidArgument("registry password is longer than 4096 characters", field="password")
        with self.db.session() as s:
            row = repo.get(s, address)
            if row is None:
                others = repo.list_all(s, limit=1)
                if others:
                    raise FailedPrecondition(
                        f"registry {others[0].address} is already set: builds go to one registry; "
                        f"delete it first ('serversinc registries delete {others[0].address}')",
                        reason="REGISTRY_ALREADY_SET", metadata={"address": others[0].address})
                row = Registry(address=address, created_at=utcnow())
                s.add(row)
            row.username = username
            row.password = self.box.encrypt(password) if password else ""
            row.updated_at = utcnow()
            s.flush()
            return _view(row)

    def list(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[RegistryView], str]:
        size = paging.page_size(page_size, default=50, maximum=500)
        after = paging.decode(page_token).get("after", "")
        with self.db.read() as s:
            rows = repo.list_all(s, after=after, limit=size + 1)
            more = len(rows) > size
            rows = rows[:size]
            return [_view(r) for r in rows], paging.encode({"after": rows[-1].address}) if more else ""

    def get(self, address: str) -> RegistryView:
        address = check_address(address)
        with self.db.read() as s:
            row = repo.get(s, address)
            if row is None:
                raise NotFound(f"registry {address!r} is not set", reason="REGISTRY_NOT_FOUND")
            return _view(row)

    def delete(self, address: str) -> None:
        address = check_address(address)
        with self.db.session() as s:
            row = repo.get(s, address)
            if row is None:
                raise NotFound(f"registry {address!r} is not set", reason="REGISTRY_NOT_FOUND")
            repo.delete(s, row)

    def credentials(self) -> tuple[str, str, str] | None:
        """(address, username, password) of the registry builds are published to, the password
        decrypted in memory only; None when none is set."""
        with self.db.read() as s:
            rows = repo.list_all(s, limit=1)
            if not rows:
                return None
            row = rows[0]
            return row.address, row.username or "", self.box.decrypt(row.password or "")
