"""`serversinc-api`: runs the control plane (gRPC API + deploy workers) until SIGINT/SIGTERM.

On a SQLite database it first takes the home's single-instance lock and exits 1 when another
process holds it (see services.db.home_lock). The schema is brought up to date at every start;
`serversinc-api db upgrade` does only that, as a step of its own (before a rollout of new replicas),
and `serversinc-api db current` prints the revision the database is at.

The API serves TLS with `<home>/certs/api.pem` (services.api.server.server_credentials); it exits 1
saying what to do when there is no certificate and no CA to issue one. `--plaintext` (or
SERVERSINC_API_PLAINTEXT=1) serves plaintext instead, with a warning in the log.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from common.api_tls import PLAINTEXT_ENV, ApiTlsError
from common.defaults import API_LISTEN_ENV
from services.api.server import run_server
from services.config import Settings
from services.db.home_lock import HomeLock, HomeLocked
from services.observability import logs
from services.platform import Platform, SecretKeyMismatch


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="serversinc-api", description=__doc__)
    parser.add_argument("--listen", default=settings.api_address, help="host:port (default %(default)s)")
    parser.add_argument("--agent", default=settings.local_agent_address, help="address of the 'local' server's agent")
    parser.add_argument("--plaintext", action="store_true", default=None,
                        help=f"serve plaintext gRPC instead of TLS (local tests only; or {PLAINTEXT_ENV}=1); "
                             "default: TLS with <home>/certs/api.pem, issued from the CA there when missing")
    commands = parser.add_subparsers(dest="command", metavar="{db}", help="(none: run the control plane)")
    db = commands.add_parser("db", help="the database schema (SERVERSINC_DATABASE_URL)")
    db.add_argument("db_action", choices=["upgrade", "current"],
                    help="upgrade: migrate to the newest revision; current: print the revision")
    args = parser.parse_args(argv)
    if args.command == "db":
        return run_db_command(settings, args.db_action)
    settings.local_agent_address = args.agent
    if args.plaintext:
        settings.api_plaintext = True
    logs.configure(os.environ.get("SERVERSINC_LOG_FORMAT", "json"))
    host, _, port = args.listen.rpartition(":")
    if "," in args.listen or not port.isdigit():
        # SERVERSINC_API may be the clients' list of every replica: a replica listens on one.
        print(f"serversinc-api: cannot listen on {args.listen!r}: give this replica's own host:port with "
              f"--listen or {API_LISTEN_ENV}", file=sys.stderr)
        return 2
    lock = None
    if settings.database_url.startswith("sqlite"):
        try:
            lock = HomeLock.acquire(settings.home)
        except HomeLocked as err:
            print(f"serversinc-api: refusing to start: {err}", file=sys.stderr)
            return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with run_server(Platform(settings), host=host, port=int(port)) as (_, bound):
            logging.info("control plane listening on %s:%s%s (database %s)", host, bound,
                         " (PLAINTEXT)" if settings.api_plaintext else " (TLS)",
                         make_url(settings.database_url).render_as_string(hide_password=True))
            stop.wait()
    except (SecretKeyMismatch, ApiTlsError) as err:
        print(f"serversinc-api: refusing to start: {err}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()
    return 0


def run_db_command(settings: Settings, action: str) -> int:
    """Prints the revision the database is at after `action` (`current`: "none" before any schema)."""
    from services.db import schema
    from services.db.session import make_engine

    engine = make_engine(settings.database_url)
    try:
        revision = schema.upgrade(engine) if action == "upgrade" else schema.current(engine)
    except OperationalError as err:  # unreachable, refused, bad credentials: one line, no traceback
        reason = " ".join(line.strip() for line in str(err.orig or err).splitlines() if line.strip())
        print(f"serversinc-api db {action}: cannot use the database: {reason}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    head = schema.head()
    print(f"{revision or 'none'}{' (head)' if revision == head else f' (head is {head})'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
