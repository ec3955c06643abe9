"""services.core.validation: the common rules, a broken one raised as InvalidArgument."""

from __future__ import annotations

import pytest

from common import rules
from common.rules import RuleError
from services.core import validation as v
from services.core.errors import InvalidArgument


def test_a_broken_rule_is_invalid_argument_with_the_rule_message():
    with pytest.raises(InvalidArgument, match="app name 'web\\\\n' is invalid: use 1-63") as caught:
        v.app_name("web\n")
    assert not isinstance(caught.value, RuleError)


def test_passing_rules_return_the_canonical_value():
    assert v.stop_signal("quit") == "SIGQUIT"
    assert v.domain("WWW.Example.com.") == "www.example.com"
    assert v.resource_name("edge-1", "server") == "edge-1"
    assert v.seconds(10, "drain period", maximum=60) == 10


def test_checked_turns_a_block_of_rules_into_invalid_argument():
    with pytest.raises(InvalidArgument, match="env key 'FOO\\\\n'"):
        with v.checked():
            rules.env({"FOO\n": "1"})
