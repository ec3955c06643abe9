"""`serversinc run` argument handling (pure): the argv after `--`, options between NAME and `--`,
usage errors, and the exit code a run's outcome gives."""

from __future__ import annotations

import pytest
from serversinc.v1 import run_pb2

from cli.errors import UsageError
from cli.main import main, parse_args
from cli.run import exit_code_of, split_run_words


@pytest.mark.parametrize("argv, command, detach", [
    (["run", "web", "--", "/bin/sh", "-c", "echo hi; exit 3"], ["/bin/sh", "-c", "echo hi; exit 3"], False),
    (["run", "web", "--detach", "--", "/app", "migrate", "--fake"], ["/app", "migrate", "--fake"], True),
    (["run", "--detach", "web", "--", "/app", "--", "x"], ["/app", "--", "x"], True),
    (["run", "web", "--detach", "--", "/app", "--", "x"], ["/app", "--", "x"], True),
    (["run", "web", "/app", "migrate"], ["/app", "migrate"], False),
])
def test_the_command_is_what_follows_the_double_dash(argv, command, detach):
    args = parse_args(argv)
    assert split_run_words(args) == command and args.detach is detach


def test_timeout_between_name_and_double_dash():
    args = parse_args(["run", "web", "--timeout", "60", "--", "/app"])
    assert split_run_words(args) == ["/app"] and args.timeout == 60


@pytest.mark.parametrize("argv", [["run", "web"], ["run", "web", "--"], ["run", "web", "--bogus", "--", "/app"]])
def test_no_command_or_an_unknown_option_is_a_usage_error(argv):
    with pytest.raises(UsageError):
        split_run_words(parse_args(argv))
    assert main(["--api", "127.0.0.1:1", *argv]) == 2  # before any call to the API


def test_the_exit_code_is_the_commands_own():
    assert exit_code_of(run_pb2.Run(state=run_pb2.RUN_STATE_SUCCEEDED)) == 0
    assert exit_code_of(run_pb2.Run(state=run_pb2.RUN_STATE_FAILED, exit_code=3)) == 3
    assert exit_code_of(run_pb2.Run(state=run_pb2.RUN_STATE_FAILED, exit_code=-1)) == 1
    assert exit_code_of(run_pb2.Run(state=run_pb2.RUN_STATE_FAILED)) == 1
