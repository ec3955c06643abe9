"""Registries: one at a time, the password encrypted at rest and never listed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.registries.service import RegistryService
from services.security.secretbox import SecretBox


@pytest.fixture
def registries(db):
    return RegistryService(db, SecretBox(Fernet.generate_key()))


def test_password_is_encrypted_at_rest_and_never_listed(db, registries):
    registries.set("Registry.Example.com:5000", username="ci", password="s3cret-pw")
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT address, username, password FROM registries")).one()
    assert stored.address == "registry.example.com:5000" and stored.username == "ci"
    assert "s3cret-pw" not in stored.password and stored.password.startswith("fernet:")
    views, _ = registries.list()
    assert [(v.address, v.username, v.has_password) for v in views] == [("registry.example.com:5000", "ci", True)]
    assert "s3cret-pw" not in repr(views)
    assert registries.credentials() == ("registry.example.com:5000", "ci", "s3cret-pw")


def test_one_registry_at_a_time(registries):
    registries.set("a.example:5000", username="ci", password="one")
    with pytest.raises(FailedPrecondition, match="a.example:5000 is already set") as err:
        registries.set("b.example:5000")
    assert err.value.reason == "REGISTRY_ALREADY_SET"
    # The same address again replaces its credentials.
    registries.set("a.example:5000")
    assert registries.credentials() == ("a.example:5000", "", "")
    registries.delete("a.example:5000")
    registries.set("b.example:5000")
    assert registries.credentials()[0] == "b.example:5000"
    with pytest.raises(NotFound) as missing:
        registries.delete("a.example:5000")
    assert missing.value.reason == "REGISTRY_NOT_FOUND"


@pytest.mark.parametrize("address", ["https://r.example", "r.example/path", "r.example:99999", "", "-r.example"])
def test_bad_addresses_are_refused(registries, address):
    with pytest.raises(InvalidArgument, match="HOST"):
        registries.set(address)
