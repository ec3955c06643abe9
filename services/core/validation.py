"""The input rules of `common.rules`, as the control plane raises them: InvalidArgument.

The rules themselves live in `common.rules`, which the agent imports too, so an input the API
accepts is never refused later by the agent. Each function here is that rule with a broken rule
turned into InvalidArgument (the message, which says what is allowed, is kept); `checked()` does
the same for a block of rule calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from common import rules
from common.rules import RuleError
from services.core.errors import InvalidArgument

T = TypeVar("T")


@contextmanager
def checked() -> Iterator[None]:
    """Run `common.rules` calls; a broken rule is the caller's InvalidArgument."""
    try:
        yield
    except RuleError as exc:
        raise InvalidArgument(str(exc)) from None


def _api(rule: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(rule)
    def check(*args, **kwargs) -> T:
        with checked():
            return rule(*args, **kwargs)
    return check


resource_name = _api(rules.name)
app_name = _api(rules.app_name)
repo_url = _api(rules.repo_url)
branch = _api(rules.branch)
commit_sha = _api(rules.commit_sha)
port = _api(rules.port)
health_path = _api(rules.health_path)
relative_path = _api(rules.relative_path)
env = _api(rules.env)
seconds = _api(rules.seconds)
bounded = _api(rules.bounded)
stop_signal = _api(rules.stop_signal)
domain = _api(rules.domain)
domains = _api(rules.domains)
notify_url = _api(rules.notify_url)
hsts_seconds = _api(rules.hsts_seconds)
maintenance_message = _api(rules.maintenance_message)
drain_seconds = _api(rules.drain_seconds)
health = _api(rules.health)
