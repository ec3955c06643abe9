"""Memory and CPU limits on a real engine: applied to every container of a release and to each
build step, a release killed for memory before it is healthy fails at START (the old one serves),
and an OOM kill after the deploy shows in ListContainers (Docker's `oom` event, agent.oom_watch).

The allocator is busybox `dd bs=64M`: it takes a 64 MiB buffer at once, measured to be killed
under a 32 MiB limit (exit 137, OOMKilled) where `head -c | tail` streams and may not be.
"""

from __future__ import annotations

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from common.phases import Phase
from tests.support.agent_calls import build, deploy, http_get, wait_until
from tests.support.sample_app import commit_files, make_sample_repo

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
LIMITS = pb.Resources(memory_bytes=32 * MIB, cpu_millis=500)
DD_64M = '"/bin/busybox","dd","if=/dev/zero","bs=64M","count=1","of=/dev/null"'
OOM_AT_START = f"""FROM scratch
COPY busybox /bin/busybox
CMD [{DD_64M}]
"""
# A CGI script that takes 64 MiB: the kernel kills it, a child of httpd, and the container runs on.
OOM_CGI = """#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
/bin/busybox dd if=/dev/zero bs=64M count=1 of=/dev/null
echo "dd exit $?"
"""
WITH_CGI = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
COPY oom.cgi /www/cgi-bin/oom
RUN ["/bin/busybox","chmod","755","/www/cgi-bin/oom"]
EXPOSE 8080
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""

# The main process takes 64 MiB once asked (GET /cgi-bin/boom), after the deploy: the kernel kills
# it, Docker restarts the container (its restart policy) and it serves again (/www/done says so).
BOOM_CGI = """#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
/bin/busybox touch /www/boom
echo armed
"""
MAIN_OOM_LATER = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
COPY boom.cgi /www/cgi-bin/boom
RUN ["/bin/busybox","chmod","755","/www/cgi-bin/boom"]
EXPOSE 8080
CMD ["/bin/busybox","sh","-c","if [ -e /www/done ]; then exec /bin/busybox httpd -f -p 8080 -h /www; fi; \\
/bin/busybox httpd -p 8080 -h /www; until [ -e /www/boom ]; do /bin/busybox sleep 0.1; done; \\
/bin/busybox touch /www/done; exec /bin/busybox dd if=/dev/zero bs=64M count=1 of=/dev/null"]
"""


def _build(agent, app, repo, sha, deployment_id, resources=LIMITS):
    return build(agent.stub, app, repo, sha, deployment_id, resources=resources)[-1]


def _deploy(agent, app, repo, sha, deployment_id):
    built = _build(agent, app, repo, sha, deployment_id)
    assert built.error == "", built.error
    return deploy(agent.stub, app, sha, deployment_id, resources=LIMITS)[-1]


def test_limits_apply_and_a_release_killed_for_memory_fails_at_start(agent, app_name, docker_client,
                                                                      tmp_path):
    repo = make_sample_repo(tmp_path / "repo", "v1")
    good = _deploy(agent, app_name, repo, repo.head.commit.hexsha, 301)
    assert good.phase is Phase.DONE, good.error
    host = docker_client.containers.get(good.container_id).attrs["HostConfig"]
    # memswap = memory: no swap on top of the limit; --cpus 0.5 is 0.5e9 nano CPUs.
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"]) == (32 * MIB, 32 * MIB, 500_000_000)

    hungry = commit_files(repo, {"Dockerfile": OOM_AT_START}, "takes 64 MiB at start")
    failed = _deploy(agent, app_name, repo, hungry, 302)
    assert (failed.phase, failed.failure) == (Phase.START, pb.FAILURE_KIND_START), failed
    assert "OOM-killed: it passed its memory limit of 32 MiB" in failed.error
    assert http_get(good.url) == (200, "<html><body>sample app v1</body></html>\n")
    listed = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
    assert [(c.id, c.serving) for c in listed] == [(good.container_id, True)]


def test_build_steps_run_under_the_limits_and_an_oom_says_so(agent, app_name, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    # The step prints its own cgroup limits (v1 or v2 files, whichever the engine has).
    show = commit_files(repo, {"Dockerfile": (
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        f'LABEL io.serversinc.test-nonce={app_name}\n'
        'RUN ["/bin/busybox","sh","-c","cat /sys/fs/cgroup/memory/memory.limit_in_bytes '
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max '
        '2>/dev/null; true"]\n')}, "show limits")
    events = build(agent.stub, app_name, repo, show, 311, resources=LIMITS)
    assert events[-1].error == "", events[-1].error
    lines = [e.line.strip() for e in events]
    assert str(32 * MIB) in lines
    assert "50000" in lines or "50000 100000" in lines

    hungry = commit_files(repo, {"Dockerfile": (
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        f'LABEL io.serversinc.test-nonce={app_name}-2\nRUN [{DD_64M}]\n')}, "build takes 64 MiB")
    failed = _build(agent, app_name, repo, hungry, 312)
    assert "returned a non-zero code: 137" in failed.error
    assert "out of memory" in failed.error and "OOM-killed" in failed.error
    assert "build memory limit of 32 MiB" in failed.error


def test_an_oom_kill_after_the_deploy_is_listed(agent, app_name, docker_client, tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": WITH_CGI, "oom.cgi": OOM_CGI}, "an endpoint that takes 64 MiB")
    done = _deploy(agent, app_name, repo, sha, 321)
    assert done.phase is Phase.DONE, done.error

    def listed():
        [c] = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
        return c

    before = listed()
    assert before.oom_kills == 0 and not before.HasField("last_oom_time")
    status, body = http_get(before.direct_url, "/cgi-bin/oom", timeout=10)
    assert "dd exit 137" in body, (status, body)
    assert wait_until(lambda: listed().oom_kills == 1, timeout=15)
    after = listed()
    assert after.HasField("last_oom_time")
    assert after.last_oom_time.ToDatetime() >= before.create_time.ToDatetime()
    # The child was killed: the container runs on, and Docker's own flag does not show it.
    assert (after.state, after.restart_count) == ("running", 0)
    assert docker_client.containers.get(done.container_id).attrs["State"]["OOMKilled"] is False
    assert http_get(done.url)[0] == 200


def test_a_main_process_oom_after_the_deploy_is_listed_across_dockers_restart(agent, app_name, docker_client,
                                                                                tmp_path):
    repo = make_sample_repo(tmp_path / "repo")
    sha = commit_files(repo, {"Dockerfile": MAIN_OOM_LATER, "boom.cgi": BOOM_CGI}, "takes 64 MiB when asked")
    done = _deploy(agent, app_name, repo, sha, 331)
    assert done.phase is Phase.DONE, done.error

    def listed():
        [c] = agent.stub.ListContainers(pb.ListContainersRequest(app=app_name), timeout=10).containers
        return c

    assert "armed" in http_get(listed().direct_url, "/cgi-bin/boom", timeout=10)[1]
    assert wait_until(lambda: (listed().oom_kills, listed().restart_count, listed().state) == (1, 1, "running"),
                      timeout=30), listed()
    assert listed().HasField("last_oom_time")
    # Docker 20.10 keeps its flag across the restart (measured); the count comes from the event.
    assert docker_client.containers.get(done.container_id).attrs["State"]["OOMKilled"] is True
    assert wait_until(lambda: http_get(done.url)[0] == 200, timeout=30)
