"""cli/config.py: --since parsing and the set-env request, without a server."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from cli.config import build_request, parse_since
from cli.errors import UsageError

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=timezone.utc)


def test_since_takes_a_duration_ago_or_an_rfc3339_time():
    assert parse_since("10m", NOW) == datetime(2026, 12, 1, 19, 50, tzinfo=timezone.utc)
    assert parse_since("1d", NOW) == datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T21:30:00+01:00") == datetime(2026, 12, 1, 20, 30, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T20:30:00Z") == datetime(2026, 12, 1, 20, 30, tzinfo=timezone.utc)
    for bad in ("10", "5 minutes", "2026-12-01T20:30:00", "yesterday"):
        with pytest.raises(UsageError):
            parse_since(bad, NOW)


def _args(pairs=(), secret=None, unset=None, deploy=False):
    return argparse.Namespace(name="web", pairs=list(pairs), secret=secret, unset=unset, deploy=deploy)


def test_set_env_request_takes_a_bare_secret_from_the_environment_and_refuses_contradictions():
    request = build_request(_args(["A=1"], secret=["TOKEN", "K=v=w"], unset=["OLD"], deploy=True),
                            environ={"TOKEN": "from-shell"})
    assert dict(request.env) == {"A": "1"} and dict(request.secret_env) == {"TOKEN": "from-shell", "K": "v=w"}
    assert list(request.unset_names) == ["OLD"] and request.deploy
    for args in (_args(secret=["MISSING"]), _args(["A=1"], unset=["A"]), _args(["A=1"], secret=["A=2"]),
                 _args(), _args(["1A=x"])):
        with pytest.raises(UsageError):
            build_request(args, environ={})

