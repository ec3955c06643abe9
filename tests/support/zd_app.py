"""A sample app for zero-downtime tests (and the benchmark): busybox httpd with a shell.

One image serves every scenario, chosen per deploy through the environment:
- `/` answers `sample app <version>`; `/cgi-bin/slow` answers after 1 s (`SLOW_SECONDS`);
- `START_DELAY=<s>`: listen only after that many seconds (a slow starter);
- `CRASH=1`: exit with code 3 instead of listening;
- `HEALTH_PATH=<file>`: what the image's Docker HEALTHCHECK fetches (default index.html).
"""

from __future__ import annotations

from pathlib import Path

import git

from tests.support.sample_app import commit_files, index_html, make_sample_repo

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
COPY start.sh /start.sh
COPY slow /www/cgi-bin/slow
COPY index.html /www/index.html
RUN ["/bin/chmod","755","/start.sh","/www/cgi-bin/slow"]
EXPOSE 8080
{healthcheck}
CMD ["/bin/sh","/start.sh"]
"""

HEALTHCHECK = ('HEALTHCHECK --interval=250ms --timeout=1s --retries=2 '
               'CMD wget -q -O /dev/null "http://127.0.0.1:8080/${HEALTH_PATH:-index.html}"')

START_SH = """#!/bin/sh
sleep "${START_DELAY:-0}"
if [ -n "$CRASH" ]; then echo "crashing on purpose"; exit 3; fi
echo "listening on 8080"
exec httpd -f -p 8080 -h /www
"""

SLOW_CGI = """#!/bin/sh
sleep "${SLOW_SECONDS:-1}"
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "slow done"
"""


def make_zd_repo(path: str | Path, version: str = "v1", *, docker_healthcheck: bool = False) -> git.Repo:
    """The sample repo turned into the zero-downtime app (`version` in its index.html)."""
    repo = make_sample_repo(path, version)
    commit_zd_version(repo, version, docker_healthcheck=docker_healthcheck)
    return repo


def commit_zd_version(repo: git.Repo, version: str, *, docker_healthcheck: bool = False) -> str:
    return commit_files(repo, {
        "Dockerfile": DOCKERFILE.format(healthcheck=HEALTHCHECK if docker_healthcheck else ""),
        "start.sh": START_SH, "slow": SLOW_CGI, "index.html": index_html(version)},
        f"zero-downtime app {version}")


def body(version: str) -> str:
    return index_html(version)
