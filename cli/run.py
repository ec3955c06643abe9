"""`serversinc run NAME [--detach] -- CMD ARGS…` and `serversinc runs NAME` / `runs logs NAME ID`.

`run` runs CMD in a fresh container of the app's serving release (its image, env with secret
env, limits, volumes), prints its output as it comes and exits with the command's exit code; the
container is removed. Ctrl-C cancels the call: the server kills and removes the container.
`--detach` prints the run's name and returns at once; `runs` lists the app's runs and `runs
logs` prints a run's output (the server keeps the last ones of each app).
"""

from __future__ import annotations

import argparse
import sys

from rich.table import Table
from serversinc.v1 import app_service_pb2, run_pb2

from client.names import enum_value_short
from client.pages import all_pages

from . import render
from .errors import UsageError

State = run_pb2.RunState


def add_parsers(sub, leaf, json_flag) -> None:
    p = leaf(sub, "run", cmd_run, "run a command in a fresh container of an app's serving release, "
             "on the app's first server")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--detach", action="store_true",
                   help="start it and return: list it with `runs NAME`, read it with `runs logs NAME ID`")
    p.add_argument("--timeout", type=int, default=0, metavar="SECONDS",
                   help="kill the command after this long (default 3600)")
    # REMAINDER: argparse would otherwise end NAME's positionals before `--detach -- CMD`; the
    # options given between NAME and `--` are read by `split_run_words`.
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                   help="the command and its arguments, after -- (no shell)")

    p = leaf(sub, "runs", cmd_runs, "list an app's runs (serversinc runs NAME) or print one's output "
             "(serversinc runs logs NAME ID)")
    p.add_argument("words", nargs="+", metavar="NAME | logs NAME ID")
    json_flag(p)


def split_run_words(args) -> list[str]:
    """The argv to run. argparse drops a `--` right after NAME itself; otherwise the words start
    with the options given between NAME and `--` (`--detach`, `--timeout N`), set on `args` here,
    then `--`, then the command. A usage error when there is no command."""
    words = list(args.cmd)
    if words and words[0].startswith("-"):
        if "--" not in words:
            raise UsageError(f"run: unknown option {words[0]!r}: put the command after --")
        cut = words.index("--")
        options, words = words[:cut], words[cut + 1:]
        while options:
            option = options.pop(0)
            if option == "--detach":
                args.detach = True
            elif option == "--timeout" and options and options[0].isdigit():
                args.timeout = int(options.pop(0))
            else:
                raise UsageError(f"run: unknown option {option!r} before --")
    if not words:
        raise UsageError("run: no command given: serversinc run NAME [--detach] -- CMD ARGS…")
    return words


def exit_code_of(run) -> int:
    """The command's own exit code; 1 when it never gave one (it could not start, was cancelled)."""
    if run.state == State.RUN_STATE_SUCCEEDED:
        return 0
    return run.exit_code if 0 < run.exit_code < 256 else 1


def cmd_run(conn, args, out, err) -> int:
    command = split_run_words(args)
    request = app_service_pb2.RunAppCommandRequest(name=args.name, command=command, detach=args.detach,
                                                   timeout_seconds=args.timeout)
    last = None
    for event in conn.apps.RunAppCommand(request):
        if event.WhichOneof("event") == "line":
            # Plain write: command output is printed verbatim, never styled or wrapped.
            sys.stdout.write(event.line + "\n")
            sys.stdout.flush()
        else:
            last = event.run
    if last is None:
        print("error: the control plane ended the run without its outcome", file=sys.stderr)
        return 1
    if args.detach:
        if last.state != State.RUN_STATE_RUNNING:
            print(f"error: {last.name}: {last.reason}", file=sys.stderr)
            return exit_code_of(last)
        print(f"started {last.name}; read it with: serversinc runs logs {last.app} {last.id}", file=sys.stderr)
        return 0
    if last.state != State.RUN_STATE_SUCCEEDED:
        print(f"{last.name}: {last.reason}", file=sys.stderr)
    return exit_code_of(last)


def runs_table(runs) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "COMMAND", "STATE", "EXIT", "STARTED", "ENDED"):
        table.add_column(column)
    for r in runs:
        ended = r.HasField("end_time")
        table.add_row(str(r.id), " ".join(r.command)[:60] + (" &" if r.detach else ""),
                      enum_value_short(State, r.state),
                      str(r.exit_code) if ended and r.state != State.RUN_STATE_RUNNING else "",
                      render.fmt_time(r.create_time), render.fmt_time(r.end_time, ended))
    return table


def cmd_runs(conn, args, out, err) -> int:
    words = args.words
    if len(words) == 3 and words[0] == "logs":
        return cmd_runs_logs(conn, words[1], words[2])
    if len(words) == 2 and words[0] == "list":
        words = words[1:]
    if len(words) != 1:
        raise UsageError("runs: serversinc runs NAME, or serversinc runs logs NAME ID")
    return cmd_runs_list(conn, words[0], args, out)


def cmd_runs_list(conn, app: str, args, out) -> int:
    runs = all_pages(conn.apps.ListAppRuns,
                     lambda token: app_service_pb2.ListAppRunsRequest(parent=app, page_size=500,
                                                                      page_token=token), "runs")
    if args.json:
        render.print_json(runs)
    elif not runs:
        out.print(f"no runs of {app}", markup=False)
    else:
        out.print(runs_table(runs))
    return 0


def cmd_runs_logs(conn, app: str, run: str) -> int:
    if not run.isdigit():
        raise UsageError(f"runs logs: the run id is a number (see `serversinc runs {app}`), got {run!r}")
    app = app.removeprefix("apps/")
    output = conn.apps.GetAppRunOutput(app_service_pb2.GetAppRunOutputRequest(name=f"apps/{app}/runs/{run}"))
    if output.truncated:
        print("(older lines were not kept)", file=sys.stderr)
    for line in output.lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0
