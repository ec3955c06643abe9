"""`--servers` and `--replicas` on apps create/update: parsed into App.servers/replicas and named
in the update mask; a malformed list is a usage error before any RPC."""

import pytest

from cli import apps
from cli.main import main, parse_args


def test_create_and_update_carry_servers_in_order_and_replicas():
    app = apps.build_create_request(parse_args(
        ["apps", "create", "web", "--repo", "r", "--servers", "b, a", "--replicas", "4"])).app
    assert (list(app.servers), app.replicas, app.server) == (["b", "a"], 4, "")
    req = apps.build_update_request(parse_args(["apps", "update", "web", "--servers", "a,b", "--replicas", "3"]))
    assert list(req.update_mask.paths) == ["servers", "replicas"]
    assert (list(req.app.servers), req.app.replicas) == (["a", "b"], 3)
    assert list(apps.build_update_request(parse_args(["apps", "update", "web", "--server", "x"])).update_mask.paths) \
        == ["server"]


@pytest.mark.parametrize("bad", [["--servers", "a,,b"], ["--servers", ""], ["--replicas", "0"], ["--replicas", "x"]])
def test_a_bad_servers_list_or_replica_count_is_a_usage_error_before_any_rpc(bad, capsys):
    assert main(["--api", "127.0.0.1:9", "apps", "update", "web", *bad]) == 2
    assert "Traceback" not in capsys.readouterr().err
