"""A real PostgreSQL server for tests: a throw-away cluster of our own, or one named by an admin URL.

`PostgresCluster.start()` runs Debian's PostgreSQL binaries (`/usr/lib/postgresql/<v>/bin`, not on
PATH) on a free loopback port with its data and its unix socket in one temporary directory; `stop()`
stops the server and removes the directory, so nothing outlives the tests. PostgreSQL refuses to run
as root, so when we are root, `initdb` and `pg_ctl` run as the `postgres` user and the directory is
handed to it. Durability is switched off (fsync, synchronous_commit): a test cluster is thrown away.

`PostgresCluster.attach(url)` uses a server someone else runs (scripts/test.sh starts one per run
and exports `SERVERSINC_TEST_POSTGRES_URL`); stopping an attached cluster only forgets it.

Each test gets a database of its own: `create_database(name)` returns its SQLAlchemy URL,
`drop_database(name)` ends its connections and drops it.

A cluster started for an owner process (`owner_pid`, `--owner`) is also stopped when that process
dies without stopping it (SIGKILL, a `timeout` that sends SIGTERM, which skips atexit): a small
detached reaper waits on the owner's pidfd, then stops the server and removes the directory.

Command line (one implementation for scripts/test.sh and the fixtures):
    python -m tests.support.postgres start DIR [--owner PID]   # prints the admin URL
    python -m tests.support.postgres stop DIR
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ENV_ADMIN_URL = "SERVERSINC_TEST_POSTGRES_URL"
SERVER_USER = "postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Every control plane in a test holds a pool; several run at once in the integration suite.
    "max_connections": "300",
}


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None when PostgreSQL is not installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dbapi_conninfo(url: str) -> str:
    """psycopg takes `postgresql://...`; SQLAlchemy's `postgresql+psycopg://...` names the driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def dump_database(url: str) -> bytes:
    """Every byte a database holds, as `pg_dump` writes it (schema and rows, as plain SQL): what
    tests search for secrets that must never be stored in clear."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (pg_dump)")
    result = subprocess.run([str(bin_dir / "pg_dump"), "--dbname", _dbapi_conninfo(url)],
                            capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


class PostgresCluster:
    """One PostgreSQL server: `admin_url` connects as a superuser to its `postgres` database."""

    def __init__(self, admin_url: str, root: Path | None = None):
        self.admin_url = admin_url
        self.root = root  # set only for a cluster we started (and therefore stop)

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def attach(cls, admin_url: str) -> "PostgresCluster":
        cluster = cls(admin_url)
        cluster._admin("SELECT 1")
        return cluster

    @classmethod
    def start(cls, root: Path | str | None = None, *, owner_pid: int | None = None,
              attempts: int = 3) -> "PostgresCluster":
        """initdb + start in `root` (made when missing; default a new temp dir). Removed by stop(),
        or by the reaper once `owner_pid` exits."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        root = Path(root) if root else Path(tempfile.mkdtemp(prefix="serversinc-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        as_user = cls._server_user()
        if as_user is not None:
            owner = pwd.getpwnam(as_user)
            os.chown(root, owner.pw_uid, owner.pw_gid)
        data = root / "data"
        try:
            cls._run(as_user, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--no-sync", "--no-instructions")
            last_error = ""
            for _ in range(attempts):  # a free port may be taken between the probe and the bind
                port = _free_port()
                options = " ".join([f"-p {port}", f"-k {root}"] + [f"-c {k}={v}" for k, v in _SETTINGS.items()])
                result = cls._run(as_user, bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log",
                                  "-o", options, "-w", "-t", "60", "start", check=False)
                if result.returncode == 0:
                    cluster = cls(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", root)
                    (root / "admin_url").write_text(cluster.admin_url + "\n")
                    if owner_pid is not None:
                        cls._start_reaper(root, owner_pid)
                    return cluster
                last_error = result.stdout + result.stderr + cls._log_tail(root)
            raise RuntimeError(f"PostgreSQL did not start: {last_error}")
        except BaseException:
            cls._stop_dir(root)
            raise

    def stop(self) -> None:
        """Stops a cluster we started and removes its directory; an attached one is left running."""
        if self.root is not None:
            self._stop_dir(self.root)
            self.root = None

    def __enter__(self) -> "PostgresCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------
    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        self._check_name(name)
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Ends every session on `name` (a control plane's pool may still hold some), then drops it."""
        self._check_name(name)
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def checkpoint(self) -> None:
        """Writes every dirty page out now (a benchmark settles the server between measurements)."""
        self._admin("CHECKPOINT")

    # -- helpers -----------------------------------------------------------------------------
    def _admin(self, sql: str, params: tuple = ()) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block: autocommit.
        with psycopg.connect(_dbapi_conninfo(self.admin_url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql, params)

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")

    @staticmethod
    def _server_user() -> str | None:
        """Whom initdb/pg_ctl run as: `postgres` when we are root (the server refuses root), else us."""
        return SERVER_USER if os.geteuid() == 0 else None

    @staticmethod
    def _run(as_user: str | None, *argv, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(a) for a in argv], user=as_user, capture_output=True, text=True, cwd="/", timeout=120
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(str(argv[0])).name} failed: {result.stdout}{result.stderr}")
        return result

    @staticmethod
    def _start_reaper(root: Path, owner_pid: int) -> None:
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.postgres", "reap", str(root), "--owner", str(owner_pid)],
            cwd=Path(__file__).resolve().parents[2], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    @classmethod
    def reap(cls, root: Path, owner_pid: int) -> None:
        """Blocks until `owner_pid` exits, then stops the cluster in `root` if it still runs."""
        try:
            owner = os.pidfd_open(owner_pid)
        except ProcessLookupError:
            pass  # already gone
        else:
            select.select([owner], [], [])
            os.close(owner)
        if root.exists():
            cls._stop_dir(root)

    @staticmethod
    def _log_tail(root: Path) -> str:
        log = root / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    @classmethod
    def _stop_dir(cls, root: Path) -> None:
        data = Path(root) / "data"
        bin_dir = find_bin_dir()
        if bin_dir is not None and (data / "postmaster.pid").exists():
            # Immediate: the data is thrown away next, so there is nothing to flush.
            cls._run(cls._server_user(), bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop",
                     check=False)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop a throw-away PostgreSQL cluster for tests.")
    parser.add_argument("action", choices=["start", "stop", "reap"])
    parser.add_argument("dir", type=Path, help="the cluster's directory (data, socket, log); removed by stop")
    parser.add_argument("--owner", type=int, help="stop the cluster when this process exits")
    args = parser.parse_args(argv)
    if args.action == "start":
        print(PostgresCluster.start(args.dir, owner_pid=args.owner).admin_url, flush=True)
    elif args.action == "reap":
        PostgresCluster.reap(args.dir, args.owner)
    else:
        PostgresCluster(admin_url="", root=args.dir).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
