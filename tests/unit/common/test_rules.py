"""common.rules: every rule accepts its good values, refuses a trailing newline and option-like
input, keeps its bounds and returns the canonical form both processes store and compare."""

from __future__ import annotations

import pytest

from common import rules
from common.rules import HEALTH, RuleError


def refused(rule, *args, **kwargs) -> str:
    with pytest.raises(RuleError) as caught:
        rule(*args, **kwargs)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


@pytest.mark.parametrize("value", ["a", "web", "my-app-1", "a" * 63, "0x"])
def test_names_accepted(value):
    assert rules.app_name(value) == value
    assert rules.name(value, "server") == value


@pytest.mark.parametrize("value", ["", "web\n", "\nweb", "-web", "web-", "Web", "a_b", "a.b",
                                   "a" * 64, "--force", "web ", "wéb"])
def test_names_refused_with_what_is_allowed(value):
    message = refused(rules.name, value, "server")
    assert message.startswith("server name")
    assert "lowercase letters, digits and '-'" in message


def test_commit_sha():
    sha = "0123456789abcdef" * 2 + "01234567"
    assert rules.commit_sha(sha) == sha
    for bad in (sha + "\n", sha.upper(), sha[:-1], sha + "0", "g" * 40, "", "-" + sha[1:]):
        assert "40-hex-digit" in refused(rules.commit_sha, bad)


def test_deployment_id_and_port_bounds():
    assert rules.deployment_id(1) == 1
    refused(rules.deployment_id, 0)
    refused(rules.deployment_id, -3)
    assert rules.port(1) == 1 and rules.port(65535) == 65535
    assert "1 to 65535" in refused(rules.port, 0)
    refused(rules.port, 65536)


@pytest.mark.parametrize("value,canonical", [
    ("", "SIGTERM"), ("SIGTERM", "SIGTERM"), ("sigterm", "SIGTERM"), ("quit", "SIGQUIT"),
    ("SIGQUIT", "SIGQUIT"), ("INT", "SIGINT"), ("15", "15"), ("064", "64"),
    ("SIGRTMIN+3", "SIGRTMIN+3"), ("sigrtmax-1", "SIGRTMAX-1"),
])
def test_stop_signal_canonical_form(value, canonical):
    assert rules.stop_signal(value) == canonical
    assert rules.stop_signal(canonical) == canonical


@pytest.mark.parametrize("value", ["SIGNOPE", "NOPE", "SIGTERM\n", " SIGTERM", "0", "65", "SIGKILL",
                                   "SIGSTOP", "SIGRTMIN+100", "-15", "--signal"])
def test_stop_signal_refused(value):
    assert "signal name like SIGTERM" in refused(rules.stop_signal, value)


@pytest.mark.parametrize("value,canonical", [
    ("example.com", "example.com"), ("WWW.Example.COM", "www.example.com"),
    ("www.example.com.", "www.example.com"), ("a", "a"), ("x-1.y-2.test", "x-1.y-2.test"),
])
def test_domain_canonical_form(value, canonical):
    assert rules.domain(value) == canonical
    assert rules.domain(canonical) == canonical


@pytest.mark.parametrize("value", ["a.com\n", " a.com", "a.com ", "a b", "x\ny", "-x.com", "a;b",
                                   "a..com", "a.com..", ".a.com", "", "a_b.com",
                                   ("a" * 63 + ".") * 4 + "a"])
def test_domain_refused(value):
    assert "valid host name" in refused(rules.domain, value)


def test_domains_dedupe_in_order_and_bound_the_count():
    assert rules.domains(["B.test", "a.test", "b.test."]) == ["b.test", "a.test"]
    hosts = [f"h{i}.test" for i in range(rules.MAX_DOMAINS)]
    assert rules.domains(hosts) == hosts
    assert f"at most {rules.MAX_DOMAINS}" in refused(rules.domains, hosts + ["one-more.test"])
    refused(rules.domains, ["ok.test", "bad.test\n"])


def test_host_header_and_app_hosts():
    assert rules.host_header("Example.COM:8000") == "example.com"
    assert rules.host_header("web.localhost") == "web.localhost"
    refused(rules.host_header, "example.com:80x")
    assert rules.app_hosts("web", ["web.localhost", "a.test"]) == ["web.localhost", "a.test"]


@pytest.mark.parametrize("key", ["FOO", "_x", "a1", "A" * 128])
def test_env_key_accepted(key):
    assert rules.env_key(key) == key


@pytest.mark.parametrize("key", ["FOO\n", "1X", "", "A-B", "A B", "-FOO", "A" * 129, "É"])
def test_env_key_refused(key):
    assert "letters, digits and '_'" in refused(rules.env_key, key)


def test_env_values():
    assert rules.env({"A": "x\ny", "B": ""}) == {"A": "x\ny", "B": ""}
    refused(rules.env, {"FOO\n": "1"})
    assert "NUL" in refused(rules.env, {"A": "a\x00b"})
    refused(rules.env, {"A": "x" * (rules.MAX_ENV_VALUE + 1)})


def test_health_path():
    assert rules.health_path("/healthz?x=1") == "/healthz?x=1"
    for bad in ("healthz", "/a b", "/a\n", "/" + "a" * 1024, "-/x"):
        assert "must start with '/'" in refused(rules.health_path, bad)


def test_relative_path():
    assert rules.relative_path("", "dockerfile") == ""
    assert rules.relative_path("docker/App.Dockerfile", "dockerfile") == "docker/App.Dockerfile"
    for bad in ("/etc/passwd", "../x", "a/../../x", "-f", "a\\b", "a\nb", "a\x00"):
        assert "relative path inside the repository" in refused(rules.relative_path, bad, "dockerfile")


@pytest.mark.parametrize("url", ["https://github.com/a/b.git", "ssh://git@host/x", "git://h/x",
                                 "file:///srv/repo", "git@github.com:a/b.git", "/srv/repo"])
def test_repo_url_accepted(url):
    assert rules.repo_url(url) == url


@pytest.mark.parametrize("url", ["", "-uhttps://x", "ext::sh -c evil", "fd::3", "https://a b",
                                 "https://x\ny", "ftp://x/y", "relative/path", "a::b"])
def test_repo_url_refused(url):
    refused(rules.repo_url, url)


@pytest.mark.parametrize("value", ["main", "feature/x-1", "release-1.2"])
def test_branch_accepted(value):
    assert rules.branch(value) == value


@pytest.mark.parametrize("value", ["", "-main", "--upload-pack=x", "main\n", "a..b", "a b", "a.lock",
                                   "a/", "/a", "a//b", "@", "a@{1}", "a/.b", "a/-b", "a" * 256])
def test_branch_refused(value):
    refused(rules.branch, value)


def test_seconds_and_bounded():
    assert rules.seconds(0, "drain period") == 0
    assert rules.seconds(rules.MAX_SECONDS, "drain period") == rules.MAX_SECONDS
    assert "use 0 (the default) to 3600" in refused(rules.seconds, 3601, "drain period")
    refused(rules.seconds, -1, "drain period")
    assert rules.seconds(rules.MAX_BUILD_SECONDS, "build", maximum=rules.MAX_BUILD_SECONDS)
    assert rules.bounded(5, "x", 5, 6) == 5
    assert "use 5 to 6" in refused(rules.bounded, 7, "x", 5, 6)


def test_notify_url():
    assert rules.notify_url("https://hooks.example.com/x") == "https://hooks.example.com/x"
    for bad in ("ftp://x", "https://user:pw@x/", "https:// x", "https:///path", "https://x/\n"):
        refused(rules.notify_url, bad)


def _health(**changes):
    values = dict(status_min=HEALTH.status_min, status_max=HEALTH.status_max,
                  interval_ms=HEALTH.interval_ms, probe_timeout_ms=HEALTH.probe_timeout_ms,
                  healthy_threshold=HEALTH.healthy_threshold)
    return rules.health(**{**values, **changes})


def test_health_defaults_pass_and_bounds_are_inclusive():
    assert (HEALTH.path, HEALTH.status_min, HEALTH.status_max) == ("/", 200, 399)
    _health()
    low, high = rules.HEALTH_INTERVAL_MS
    _health(interval_ms=low)
    _health(interval_ms=high)
    _health(probe_timeout_ms=rules.HEALTH_PROBE_TIMEOUT_MS[1])
    _health(healthy_threshold=rules.HEALTHY_THRESHOLD[1])
    _health(status_min=100, status_max=599)
    _health(status_min=404, status_max=404)


@pytest.mark.parametrize("changes", [
    {"interval_ms": rules.HEALTH_INTERVAL_MS[0] - 1}, {"interval_ms": rules.HEALTH_INTERVAL_MS[1] + 1},
    {"probe_timeout_ms": rules.HEALTH_PROBE_TIMEOUT_MS[0] - 1},
    {"healthy_threshold": 0}, {"healthy_threshold": rules.HEALTHY_THRESHOLD[1] + 1},
    {"status_min": 500, "status_max": 404}, {"status_min": 99}, {"status_max": 600},
])
def test_health_out_of_bounds(changes):
    message = refused(_health, **changes)
    assert "out of range" in message or "status range" in message
