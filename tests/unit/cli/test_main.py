"""The CLI's verb/flag contract: arguments parse into the right request messages, bad --env is refused."""

import pytest

from serversinc.v1 import deployment_pb2
from cli import apps, deployments, misc
from cli.errors import UsageError
from cli.main import main, parse_args


def test_create_sends_only_given_fields_and_branch_main():
    args = parse_args(["apps", "create", "web", "--repo", "https://example.com/web.git"])
    req = apps.build_create_request(args)
    assert req.app.name == "web"
    assert req.app.repo_url == "https://example.com/web.git"
    assert req.app.branch == "main"
    # Unset fields stay zero so the server applies its own defaults.
    assert req.app.port == 0 and req.app.health_path == "" and req.app.dockerfile == ""
    assert req.app.health_timeout_seconds == 0 and not req.app.env


def test_create_all_flags():
    args = parse_args([
        "apps", "create", "web", "--repo", "/srv/web", "--branch", "dev", "--port", "3000",
        "--health-path", "/healthz", "--dockerfile", "docker/Dockerfile", "--context", "app",
        "--env", "A=1", "--env", "DSN=postgres://u:p@h/db?x=y", "--env", "EMPTY=", "--server", "local",
        "--health-timeout", "30", "--build-timeout", "600", "--stop-grace", "5",
    ])
    app = apps.build_create_request(args).app
    assert (app.repo_url, app.branch, app.port, app.health_path) == ("/srv/web", "dev", 3000, "/healthz")
    assert (app.dockerfile, app.context_dir, app.server) == ("docker/Dockerfile", "app", "local")
    assert dict(app.env) == {"A": "1", "DSN": "postgres://u:p@h/db?x=y", "EMPTY": ""}
    assert (app.health_timeout_seconds, app.build_timeout_seconds, app.stop_grace_seconds) == (30, 600, 5)


def test_create_requires_repo():
    with pytest.raises(SystemExit) as e:
        parse_args(["apps", "create", "web"])
    assert e.value.code == 2


@pytest.mark.parametrize("bad", ["NOEQUALS", "=value", "1A=x", "A B=x", "-x=1"])
def test_bad_env_is_usage_error_before_any_rpc(bad, capsys):
    # The default address is used and nothing listens in tests; exit 2 proves no RPC was attempted
    # (an RPC failure would be exit 1).
    assert main(["--api", "127.0.0.1:9", "apps", "create", "web", "--repo", "r", "--env", bad]) == 2
    assert "--env" in capsys.readouterr().err
    with pytest.raises(UsageError):
        apps.parse_env([bad])


def test_parse_env_splits_on_first_equals_and_last_wins():
    assert apps.parse_env(["A=1=2", "B=", "A=3"]) == {"A": "3", "B": ""}


def test_update_mask_lists_only_given_flags():
    args = parse_args(["apps", "update", "web", "--port", "9000", "--env", "X=1", "--stop-grace", "3"])
    req = apps.build_update_request(args)
    assert req.app.name == "web"
    assert list(req.update_mask.paths) == ["port", "env", "stop_grace_seconds"]
    assert req.app.port == 9000 and dict(req.app.env) == {"X": "1"} and req.app.stop_grace_seconds == 3
    # branch has no default on update: not in the mask.
    assert req.app.branch == ""


def test_update_mask_field_names_are_app_fields():
    args = parse_args([
        "apps", "update", "web", "--repo", "r", "--branch", "b", "--port", "1", "--health-path", "/h",
        "--dockerfile", "D", "--context", "c", "--env", "A=1", "--server", "s", "--health-timeout", "1",
        "--build-timeout", "2", "--stop-grace", "3",
    ])
    from serversinc.v1 import app_pb2
    paths = list(apps.build_update_request(args).update_mask.paths)
    assert len(paths) == 11
    assert all(p in app_pb2.App.DESCRIPTOR.fields_by_name for p in paths)


def test_update_without_fields_is_refused():
    # An empty mask means "every settable field" to the server: never send one by accident.
    with pytest.raises(UsageError):
        apps.build_update_request(parse_args(["apps", "update", "web"]))
    assert main(["--api", "127.0.0.1:9", "apps", "update", "web"]) == 2


def test_deploy_request():
    args = parse_args(["deploy", "web", "--rebuild", "--commit", "a" * 40, "--watch", "--json"])
    req = deployments.build_create_request(args)
    assert req.parent == "apps/web" and req.rebuild and req.commit_sha == "a" * 40
    assert req.trigger == deployment_pb2.DEPLOYMENT_TRIGGER_CLI
    assert args.watch and args.json
    plain = deployments.build_create_request(parse_args(["deploy", "web"]))
    assert not plain.rebuild and plain.commit_sha == "" and plain.trigger == deployment_pb2.DEPLOYMENT_TRIGGER_CLI


def test_deployment_ids():
    assert deployments.deployment_name("12") == "apps/-/deployments/12"
    assert deployments.deployment_name("deployments/7") == "apps/-/deployments/7"
    assert deployments.deployment_name("apps/web/deployments/7") == "apps/web/deployments/7"
    for bad in ("abc", "deployments/", "0", "-1", "apps/1", "apps/Web/deployments/3"):
        with pytest.raises(UsageError):
            deployments.deployment_name(bad)


def test_deployments_verbs_parse():
    a = parse_args(["deployments", "list", "web", "--limit", "5", "--json"])
    assert (a.name, a.limit, a.json) == ("web", 5, True)
    req = deployments.build_list_request(a)
    assert req.parent == "apps/web" and req.page_size == 5
    assert parse_args(["deployments", "list", "web"]).limit == 20
    assert parse_args(["deployments", "show", "3", "--json"]).id == "3"
    assert parse_args(["deployments", "cancel", "deployments/3"]).id == "deployments/3"
    assert parse_args(["deployments", "watch", "3"]).id == "3"


def test_other_verbs_parse():
    a = parse_args(["logs", "web", "--follow", "--tail", "10"])
    assert (a.name, a.follow, a.tail) == ("web", True, 10)
    assert parse_args(["servers", "list", "--json"]).json
    r = misc.build_resolve_request(parse_args(["git", "resolve", "https://x/y.git", "--branch", "dev"]))
    assert (r.repo_url, r.ref) == ("https://x/y.git", "dev")
    assert misc.build_resolve_request(parse_args(["git", "resolve", "u"])).ref == "main"
    assert parse_args(["git", "branches", "u", "--json"]).url == "u"
    assert parse_args(["apps", "delete", "web", "--yes"]).yes
    assert parse_args(["apps", "show", "web", "--json"]).json
    assert parse_args(["apps", "list", "--json"]).json


def test_api_flag_before_or_after_command():
    assert parse_args(["--api", "h:1", "apps", "list"]).api == "h:1"
    assert parse_args(["apps", "list", "--api", "h:2"]).api == "h:2"
    assert parse_args(["apps", "list"]).api is None


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert main([]) == 2
    assert main(["apps"]) == 2
    assert main(["deployments", "list", "web", "--limit", "0"]) == 2
    assert main(["--help"]) == 0


def test_secret_env_and_notify_urls_reach_the_request():
    from cli.apps import build_create_request
    from cli.main import build_parser

    args = build_parser().parse_args(["apps", "create", "web", "--repo", "/r", "--secret-env", "TOKEN=abc",
                                      "--notify-url", "https://example.com/a", "--notify-url", "https://example.com/b"])
    req = build_create_request(args)
    assert dict(req.app.secret_env) == {"TOKEN": "abc"} and not req.app.env
    assert list(req.app.notify_urls) == ["https://example.com/a", "https://example.com/b"]
