"""Benchmark: the job queue and CreateDeployment, on PostgreSQL and on SQLite, in one run.

Starts what it needs itself and removes it after: a PostgreSQL cluster of its own on a free port
(tests.support.postgres), scratch SQLite files, and control planes as `serversinc-api` processes.

(a) Queue throughput. No-op jobs through the real queue code: every worker thread loops
    `JobQueue.claim` then `JobQueue.finish` in a transaction of its own, as services.jobs.worker and
    the recorder do. Apps, deployments and jobs are created up front with the real models (--apps
    apps, --jobs-per-app jobs each, interleaved so that one app's jobs are far apart in the queue:
    the per-app exclusion is exercised but is not the bottleneck). Configurations, each on a fresh
    database: PostgreSQL with 1 worker, 2 workers (one process) and 4 workers (two replica
    processes of 2 threads each, real separate processes), and SQLite with 1 worker (the baseline).
    `run_twice` counts jobs claimed by more than one attempt or finished more than once (nothing
    expires a lease here, so any second claim is a job run twice): it must be 0. The claim latency
    is one `JobQueue.claim` call (its transaction included), p99 over the 4-worker run.
(b) CreateDeployment p99 with --callers concurrent callers over real gRPC against a real control
    plane (`serversinc-api`: services.api.server.run_server with a Platform) on each database, as the
    webhook bridge calls it (webhook trigger, request id, supersede queued). Each caller deploys an
    app of its own (20 repositories pushed at once). The control plane runs no deploy workers
    (SERVERSINC_WORKERS=0: no agent is needed for the create call, and no job is left hanging on one).
Each run's database is dropped once the run is measured (then a CHECKPOINT), so that no measurement
shares the machine with the server's clean-up of an earlier one (autovacuum of thousands of
finished jobs, their writes' checkpoint).
Last line: one JSON object (targets: >= 1000 jobs/s with 4 workers, run_twice 0, create p99 <= 50 ms).
"""

from __future__ import annotations

import argparse
import sys
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from contextlib import contextmanager

import _stack

from serversinc.v1 import (
    app_pb2,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_pb2,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)

from client.connection import Connection

SHA = "a" * 40


# --- databases ---------------------------------------------------------------------------------

class BenchCluster:
    """A PostgreSQL cluster of the benchmark's own: fresh databases, and each one dropped once its
    run is measured, so that the cluster's background work on it (autovacuum of thousands of
    finished jobs, the checkpoint of their writes) does not run during the next measurement."""

    def __init__(self, cluster):
        self.cluster = cluster

    def new_database(self) -> str:
        return self.cluster.create_database(f"bench_{uuid.uuid4().hex[:12]}")

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far: the postmaster with the backends that exited (its
        children's times) and those still running."""
        postmaster = int((self.cluster.root / "data" / "postmaster.pid").read_text().split()[0])
        total = cpu_seconds(postmaster, with_children=True)
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        total += cpu_seconds(int(proc.name))
                except (OSError, ValueError):
                    pass  # exited meanwhile: counted in the postmaster's children's times
        return total

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.cluster.drop_database(make_url(url).database)
        self.cluster.checkpoint()  # the dropped database's writes are flushed now, not later


@contextmanager
def postgres():
    """A BenchCluster on a PostgreSQL server started here and stopped after."""
    from tests.support.postgres import PostgresCluster

    cluster = PostgresCluster.start()
    try:
        yield BenchCluster(cluster)
    finally:
        cluster.stop()


def seed(url: str, apps: int, jobs_per_app: int) -> int:
    """The schema, a server, `apps` apps and their queued deployments + jobs, created with the real
    models and JobQueue.enqueue. Jobs are interleaved across apps (app 1, 2, ..., n, 1, 2, ...)."""
    from services.db.models import App, Deployment, Server, utcnow
    from services.db.session import Database
    from services.jobs.queue import JobQueue

    db = Database(url)
    try:
        db.create_schema()
        queue = JobQueue(db)
        with db.session() as s:
            server = Server(name="local", address="127.0.0.1:1")
            s.add(server)
            rows = [App(name=f"app-{i}", repo_url="/nonexistent/repo", branch="main", port=8080, health_path="/",
                        dockerfile="Dockerfile", context_dir=".", server=server) for i in range(apps)]
            s.add_all(rows)
            s.flush()
            deployments = []
            for _ in range(jobs_per_app):
                for app in rows:
                    deployments.append(Deployment(app=app, app_id=app.id, state="QUEUED", phase="QUEUED",
                                                  trigger="API", created_at=utcnow()))
            s.add_all(deployments)
            s.flush()
            for dep in deployments:
                queue.enqueue(s, dep.id, dep.app_id)
        return len(deployments)
    finally:
        db.dispose()


def job_states(url: str) -> dict:
    """What the database says after a run: jobs not done, and jobs claimed more than once."""
    from sqlalchemy import func, select

    from services.db.models import Job
    from services.db.session import Database

    db = Database(url)
    try:
        with db.read() as s:
            not_done = s.scalar(select(func.count(Job.id)).where(Job.status != "done"))
            retried = set(s.scalars(select(Job.id).where(Job.attempts != 1)))
        return {"not_done": not_done, "retried": retried}
    finally:
        db.dispose()


# --- (a) the queue -----------------------------------------------------------------------------

def claim_worker(url: str, threads: int, out: str) -> None:
    """One replica process: `threads` worker threads claiming and finishing until nothing is
    queued. Prints "ready" once its connections are open, starts on a "go" line on stdin, and
    writes every claim it made to `out` as JSON."""
    from sqlalchemy import func, select, text

    from services.db.models import Job
    from services.db.session import Database
    from services.jobs.queue import JobQueue, StaleClaim

    db = Database(url)
    queue = JobQueue(db)
    name = f"replica-{os.getpid()}"
    go = threading.Event()
    warmed = threading.Barrier(threads + 1)
    records: list[list] = []
    stale: list[int] = []
    idle = [0]
    lock = threading.Lock()

    def loop(i: int) -> None:
        worker = f"{name}-{i}"
        with db.read() as s:  # open this thread's connection before the clock starts
            s.execute(text("SELECT 1"))
        warmed.wait()
        go.wait()
        mine = []
        while True:
            t0 = time.monotonic()
            claim = queue.claim(worker)
            t1 = time.monotonic()
            if claim is None:
                with db.read() as s:
                    left = s.scalar(select(func.count(Job.id)).where(Job.status == "queued"))
                if not left:
                    break
                with lock:
                    idle[0] += 1
                continue  # the rest belong to apps whose job another worker holds right now
            try:
                with db.session() as s:
                    queue.finish(s, claim)
            except StaleClaim:
                with lock:
                    stale.append(claim.job_id)
                continue
            mine.append([claim.job_id, claim.attempt, worker, t0, t1, time.monotonic()])
        with lock:
            records.extend(mine)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    warmed.wait()
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.monotonic(), time.process_time()
    go.set()
    for t in workers:
        t.join()
    cpu = time.process_time() - cpu
    db.dispose()
    Path(out).write_text(json.dumps({"started": started, "records": records, "stale": stale, "idle": idle[0],
                                     "cpu": cpu}))


def run_queue(url: str, processes: int, threads: int, work: Path, server_cpu=None) -> dict:
    """Runs `processes` replica processes of `threads` workers each on a seeded database; their
    claims, the throughput from "go" to the last finish, and the jobs run twice."""
    outs = [work / f"claims-{uuid.uuid4().hex[:8]}.json" for _ in range(processes)]
    env = {**os.environ, "PYTHONPATH": f"{_stack.ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, __file__, "--claim-worker", url, str(threads), str(out)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for out in outs]
    try:
        for p in procs:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"claim worker did not start: {line!r}")
        server_cpu_before = server_cpu() if server_cpu else 0.0
        for p in procs:  # all replicas are ready before any starts
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            if p.wait(600) != 0:
                raise RuntimeError(f"claim worker exited {p.returncode}")
        server_cpu_used = server_cpu() - server_cpu_before if server_cpu else None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = [json.loads(out.read_text()) for out in outs]
    records = [r for result in results for r in result["records"]]
    started = min(result["started"] for result in results)
    ended = max(r[5] for r in records)
    claims: dict[int, int] = {}
    for job_id, *_ in records:
        claims[job_id] = claims.get(job_id, 0) + 1
    twice = {job_id for job_id, n in claims.items() if n > 1}
    db = job_states(url)
    if db["not_done"]:
        raise RuntimeError(f"{db['not_done']} jobs were never finished")
    claim_ms = [(r[4] - r[3]) * 1000 for r in records]
    return {
        "workers": processes * threads, "processes": processes, "jobs": len(records),
        "jobs_per_s": round(len(records) / (ended - started), 1),
        "claim_p50_ms": round(_stack.percentile(claim_ms, 50), 2),
        "claim_p99_ms": round(_stack.percentile(claim_ms, 99), 2),
        "run_twice": len(twice | db["retried"]),
        "stale_finishes": sum(len(result["stale"]) for result in results),
        "empty_claims": sum(result["idle"] for result in results),
        # The workers' own CPU (Python, SQLAlchemy, the driver), not the database server's.
        "worker_cpu_ms_per_job": round(sum(result["cpu"] for result in results) * 1000 / len(records), 3),
        # The database server's CPU (PostgreSQL's processes; None for SQLite, which runs in the workers).
        "db_server_cpu_ms_per_job": (round(server_cpu_used * 1000 / len(records), 3)
                                     if server_cpu_used is not None else None),
    }


# --- (b) CreateDeployment ----------------------------------------------------------------------

@contextmanager
def control_plane(url: str, work: Path):
    """A `serversinc-api` process on database `url` with no deploy workers; yields (address, token)."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    address = f"127.0.0.1:{_stack.free_port()}"
    dead_agent = f"127.0.0.1:{_stack.free_port()}"  # nothing listens: the create path never calls it
    env = {**os.environ, "SERVERSINC_HOME": str(home), "SERVERSINC_DATABASE_URL": url, "SERVERSINC_WORKERS": "0",
           "SERVERSINC_AGENT_TLS": "off", "SERVERSINC_METRICS": "", "SERVERSINC_LOG_FORMAT": "text"}
    for leaked in ("SERVERSINC_TOKEN", "SERVERSINC_AGENT_SECRET", "TUGBOAT_SECRET_KEY", "SERVERSINC_CA",
                   "SERVERSINC_API_PLAINTEXT"):
        env.pop(leaked, None)
    # The API serves TLS, as in production (its certificate from a CA of this home's own).
    subprocess.run([sys.executable, str(_stack.ROOT / "scripts" / "certs.py"), "--out", str(home / "certs")],
                   check=True, stdout=subprocess.DEVNULL)
    process = _stack.Process("api", [str(_stack.BIN / "serversinc-api"), "--listen", address, "--agent", dead_agent],
                             env, home / "api.log", address, certs=home / "certs", mutual=False)
    process.start()
    try:
        yield address, (home / "api-token").read_text().strip(), process
    finally:
        process.stop()


def create_latency(address: str, token: str, ca: bytes, callers: int, per_caller: int, warmup: int
                   ) -> tuple[list[float], dict]:
    """`callers` threads, each with its own app, calling CreateDeployment as the webhook bridge
    does; latencies (s) of the measured calls and the count of each status code."""
    connection = Connection(address, token, unary_timeout=None, root_ca=ca)
    apps = app_service_pb2_grpc.AppServiceStub(connection.channel)
    deployments = deployment_service_pb2_grpc.DeploymentServiceStub(connection.channel)
    run = uuid.uuid4().hex[:6]
    names = [f"q{run}-{i}" for i in range(callers)]
    for name in names:
        apps.CreateApp(app_service_pb2.CreateAppRequest(app=app_pb2.App(name=name, repo_url="/nonexistent/repo",
                                                                         branch="main")), timeout=30)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(callers)

    def caller(app: str) -> None:
        mine, seen = [], {}
        start.wait()
        for i in range(warmup + per_caller):
            delivery = str(uuid.uuid4())
            t0 = time.perf_counter()
            try:
                deployments.CreateDeployment(deployment_service_pb2.CreateDeploymentRequest(
                    parent=f"apps/{app}", rebuild=True, commit_sha=SHA, trigger=deployment_pb2.DEPLOYMENT_TRIGGER_WEBHOOK,
                    request_id=f"{delivery}:{app}", delivery_id=delivery, supersede_queued=True), timeout=60)
                code = "OK"
            except Exception as err:  # grpc.RpcError: counted, and the run reports it
                code = getattr(err, "code", lambda: "ERROR")().name
            if i >= warmup:
                mine.append(time.perf_counter() - t0)
                seen[code] = seen.get(code, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                codes[k] = codes.get(k, 0) + v

    threads = [threading.Thread(target=caller, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connection.close()
    return latencies, codes


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU time a process has used so far (Linux /proc); with the children it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_create(url: str, work: Path, args) -> dict:
    """Latencies, and the control plane's CPU per call: on a shared machine the latency depends on
    what else runs, while the CPU per call is what bounds the calls per second one process serves."""
    with control_plane(url, work) as (address, token, process):
        before = cpu_seconds(process.proc.pid)
        ca = (process.certs / "ca.pem").read_bytes()
        seconds, codes = create_latency(address, token, ca, args.callers, args.creates // args.callers, args.warmup)
        used = cpu_seconds(process.proc.pid) - before
    ms = [x * 1000 for x in seconds]
    calls = args.callers * (args.creates // args.callers + args.warmup) + args.callers  # + the CreateApp calls
    return {"calls": len(ms), "codes": codes, "p50_ms": round(_stack.percentile(ms, 50), 2),
            "p99_ms": round(_stack.percentile(ms, 99), 2), "server_cpu_ms_per_call": round(used * 1000 / calls, 2)}


def drop(pg: BenchCluster, url: str, work: Path) -> None:
    """A measured run's database, gone before the next run starts (see BenchCluster)."""
    if url.startswith("postgresql"):
        pg.drop(url)
    else:
        for path in work.glob(Path(url.split("///", 1)[1]).name + "*"):  # with its -wal, -shm
            path.unlink()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--claim-worker":
        return claim_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=1500)
    parser.add_argument("--jobs-per-app", type=int, default=2)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--creates", type=int, default=2000, help="measured CreateDeployment calls per database")
    parser.add_argument("--warmup", type=int, default=5, help="calls per caller before measuring")
    parser.add_argument("--only-create", action="store_true",
                        help="part (b) only: the queue fields of the JSON line are null")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    detail: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    try:
        with postgres() as pg:
            configs = [("postgres_1", pg.new_database, 1, 1), ("postgres_2", pg.new_database, 1, 2),
                       ("postgres_4", pg.new_database, 2, 2),
                       ("sqlite_1", lambda: f"sqlite:///{work / uuid.uuid4().hex}.db", 1, 1)]
            if args.only_create:
                configs = []
            for label, make_url, processes, threads in configs:
                url = make_url()
                jobs = seed(url, args.apps, args.jobs_per_app)
                print(f"(a) {label}: {jobs} jobs, {processes} process(es) x {threads} worker thread(s)", flush=True)
                detail[label] = run_queue(url, processes, threads, work,
                                          pg.cpu_seconds if url.startswith("postgresql") else None)
                print(f"    {json.dumps(detail[label])}", flush=True)
                drop(pg, url, work)
            for label, url in (("create_postgres", pg.new_database()),
                               ("create_sqlite", f"sqlite:///{work / 'create.db'}")):
                print(f"(b) {label}: {args.creates} CreateDeployment calls, {args.callers} callers", flush=True)
                detail[label] = measure_create(url, work, args)
                print(f"    {json.dumps(detail[label])}", flush=True)
                drop(pg, url, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    queue_runs = ("postgres_1", "postgres_2", "postgres_4", "sqlite_1")
    ran = not args.only_create
    result = {
        "jobs_per_s_4_workers": detail["postgres_4"]["jobs_per_s"] if ran else None,
        "jobs_per_s_1_worker": detail["postgres_1"]["jobs_per_s"] if ran else None,
        "jobs_per_s_2_workers": detail["postgres_2"]["jobs_per_s"] if ran else None,
        "sqlite_jobs_per_s": detail["sqlite_1"]["jobs_per_s"] if ran else None,
        "claim_p99_ms": detail["postgres_4"]["claim_p99_ms"] if ran else None,
        "run_twice": sum(detail[k]["run_twice"] for k in queue_runs) if ran else None,
        # CPU per job with 4 workers: the workers' (2 processes) and the PostgreSQL server's. On 2
        # cores their sum bounds the throughput; it moves less with the machine's load than jobs/s.
        "worker_cpu_ms_per_job_4_workers": detail["postgres_4"]["worker_cpu_ms_per_job"] if ran else None,
        "db_cpu_ms_per_job_4_workers": detail["postgres_4"]["db_server_cpu_ms_per_job"] if ran else None,
        "create_p99_ms_postgres": detail["create_postgres"]["p99_ms"],
        "create_p99_ms_sqlite": detail["create_sqlite"]["p99_ms"],
        "create_errors": sum(n for k in ("create_postgres", "create_sqlite")
                             for code, n in detail[k]["codes"].items() if code != "OK"),
        "create_server_cpu_ms_postgres": detail["create_postgres"]["server_cpu_ms_per_call"],
        "create_server_cpu_ms_sqlite": detail["create_sqlite"]["server_cpu_ms_per_call"],
        # Other work on a shared machine moves latencies: the 1-minute load average around the run.
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "callers": args.callers,
        "targets": {"jobs_per_s_4_workers": 1000, "run_twice": 0, "create_p99_ms": 50},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
