"""Containers started at once on a real engine: each gets a port of its own, pinned, answering.

The agent picks a free port and creates the container that pins it under one lock, then starts
it outside the lock, so deploys of several apps start their containers in parallel: this checks
that no two of them are ever given the same port.
"""

from __future__ import annotations

import shutil
import threading
import urllib.request

from agent import labels as L
from agent.docker_engine import ContainerSpec, DockerEngine

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""


def test_containers_started_at_once_get_distinct_pinned_ports(tmp_path, docker_client, app_name):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "index.html").write_text("ok\n")
    shutil.copy("/bin/busybox", tmp_path / "busybox")
    image = f"{app_name}:ports"
    docker_client.images.build(path=str(tmp_path), tag=image, rm=True)
    engine = DockerEngine()
    records, errors = [], []

    def start(i: int) -> None:
        try:
            records.append(engine.run(ContainerSpec(
                name=f"{app_name}-{i}", image=image, port=8080, env={},
                labels={L.MANAGED: "true", L.APP: app_name})))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    ports = [r.pinned_port for r in records]
    assert len(set(ports)) == 8 and all(ports), ports
    assert [r.host_port for r in records] == ports
    for port in ports:
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read() == b"ok\n"
