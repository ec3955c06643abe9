"""Resource names: canonical forms round-trip, old forms still read, garbage refused with the form."""

from __future__ import annotations

import pytest

from services.api import names
from services.core.errors import InvalidArgument


def test_canonical_names_round_trip():
    assert names.parse_app(names.app_name("web")) == "web"
    parsed = names.parse_deployment(names.deployment_name("web", 42))
    assert (parsed.app, parsed.id) == ("web", 42)


@pytest.mark.parametrize("old, expected", [("42", 42), ("deployments/42", 42), ("apps/-/deployments/7", 7)])
def test_old_and_wildcard_deployment_names_name_no_app(old, expected):
    assert names.parse_deployment(old) == names.DeploymentName(app=None, id=expected)


def test_a_bare_app_name_is_read_as_the_app():
    assert names.parse_app("web") == "web"


@pytest.mark.parametrize("parent", ["", "-", "apps/-"])
def test_parent_wildcards_mean_every_app(parent):
    assert names.parse_parent(parent) is None


def test_parent_names_one_app():
    assert names.parse_parent("apps/web") == "web"


@pytest.mark.parametrize("bad", [
    "apps/web/42", "apps/web/deployments/", "apps/web/deployments/0", "deployments/-1", "apps//deployments/3",
    "apps/Web/deployments/3", "servers/x/deployments/3", "42\n", "deployments/42/", "",
])
def test_garbage_deployment_names_say_the_expected_form(bad):
    with pytest.raises(InvalidArgument) as err:
        names.parse_deployment(bad, field="name")
    assert err.value.field == "name" and err.value.metadata["field"] == "name"
    assert "apps/{app}/deployments/{id}" in err.value.message or "app name" in err.value.message


@pytest.mark.parametrize("bad", ["", "servers/web", "apps/web/deployments/1", "apps/", "web\n", "apps/WEB"])
def test_garbage_app_names_are_refused_naming_the_field(bad):
    with pytest.raises(InvalidArgument) as err:
        names.parse_app(bad, field="parent")
    assert err.value.field == "parent" and err.value.message.startswith("parent")
