"""Sample app repositories for tests: a tiny busybox httpd image built `FROM scratch`.

No registry is reachable in the test environment, so the image is the static busybox binary
plus an index.html whose body names the version — an HTTP GET proves which version serves.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import git

BUSYBOX = Path("/bin/busybox")
APP_PORT = 8080

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/busybox","httpd","-f","-p","8080","-h","/www"]
"""


def slow_step(seconds: int) -> str:
    """Dockerfile lines that take `seconds` to build, every time: a unique LABEL first, so Docker's
    build cache (shared by every run on the engine) never holds the sleep and skips it."""
    return f'LABEL io.serversinc.test-nonce={uuid.uuid4().hex}\nRUN ["/bin/busybox","sleep","{seconds}"]\n'


def index_html(version: str) -> str:
    return f"<html><body>sample app {version}</body></html>\n"


def _actor() -> git.Actor:
    return git.Actor("Serversinc Tests", "tests@serversinc.invalid")


def commit_files(repo: git.Repo, files: dict[str, str | bytes], message: str) -> str:
    """Write `files` (repo-relative path -> content) into the work tree, commit, return the sha."""
    root = Path(repo.working_tree_dir)
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        repo.index.add([rel])
    commit = repo.index.commit(message, author=_actor(), committer=_actor())
    return commit.hexsha


def make_sample_repo(path: str | Path, version: str = "v1") -> git.Repo:
    """Create a git repo at `path` with the sample app (Dockerfile, busybox, index.html).

    The first commit is on branch `main` with message "sample app <version>".
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path, initial_branch="main")
    shutil.copyfile(BUSYBOX, path / "busybox")
    (path / "busybox").chmod(0o755)
    repo.index.add(["busybox"])
    commit_files(repo, {"Dockerfile": DOCKERFILE, "index.html": index_html(version)},
                 f"sample app {version}")
    return repo


def commit_version(repo: git.Repo, version: str) -> str:
    """Change index.html to serve `version`; returns the new commit sha."""
    return commit_files(repo, {"index.html": index_html(version)}, f"release {version}")


def repo_url(repo: git.Repo) -> str:
    """The URL an agent fetches the repo from (a local path works as a git URL)."""
    return str(Path(repo.working_tree_dir).resolve())
