"""Container images for Serversinc, built with no network inside any build container.

    python scripts/images.py base  [--force]            # local Debian base: serversinc-base:bookworm
    python scripts/images.py wheels                      # per-image project + pinned requirements -> build/wheels/
    python scripts/images.py build [--base IMAGE] [--only api,agent] [--tag dev] [--force]
    python scripts/images.py all   [--base IMAGE]        # base (when --base is not given), wheels, build

Images (one Dockerfile per process, under docker/):

    serversinc/api        serversinc-api (control plane gRPC + deploy workers; also the cert/secret init)
    serversinc/agent      tugboat (Tugboat agent, with git and HAProxy) and tugboat-frontdoor
    serversinc/webhook    serversinc-webhook (GitHub webhook bridge)
    serversinc/dashboard  streamlit run .../dashboard/app.py

Every Dockerfile takes the base image as the build argument BASE_IMAGE (default the public
python:3.11-slim-bookworm). Here no registry is reachable, so `base` makes one locally with
debootstrap (minbase + python3, python3-venv, git, haproxy, ca-certificates) and `docker import`.

The Python packages are installed from wheels made on the host (`pip wheel`), sent in the build
context and installed with `pip install --no-index`: the build itself never needs the network.
Each image ships only what it runs: its project wheel holds its own packages (`Image.packages`:
the api services/ + common/, the agent agent/ + common/, the webhook bridge/ + client/ + common/,
the dashboard dashboard/ + client/ + common/), the generated code they import, and only the
console scripts those packages provide.
The build context is a tarball this script assembles (docker/, the wheels, scripts/certs.py and
.streamlit/config.toml); it is streamed to the engine with the low-level Docker SDK.

Builds are cached: each image carries the label io.serversinc.source (a hash of everything that
goes into it, the base image id included); an image whose label matches is not rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = ROOT / "docker"
WHEELS = ROOT / "build" / "wheels"

BASE_TAG = "serversinc-base:bookworm"
PUBLIC_BASE = "python:3.11-slim-bookworm"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "git", "haproxy", "ca-certificates")
TAG = "dev"
SOURCE_LABEL = "io.serversinc.source"
RECIPE_LABEL = "io.serversinc.base-recipe"



@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, its requirement set, and the only project code it ships (the
    packages its process runs and the generated packages they import)."""
    dockerfile: str
    requirements: str
    packages: tuple[str, ...]
    generated: tuple[str, ...] = ("serversinc",)


IMAGES = {
    "api": Image("docker/api.Dockerfile", "core", ("services", "common"), ("serversinc", "tugboat")),
    "agent": Image("docker/agent.Dockerfile", "core", ("agent", "common"), ("serversinc", "tugboat")),
    "webhook": Image("docker/webhook.Dockerfile", "core", ("bridge", "client", "common")),
    "dashboard": Image("docker/dashboard.Dockerfile", "dashboard", ("dashboard", "client", "common")),
}
# requirements.txt pins tests' tools too; images carry only what runs.
NOT_IN_IMAGES = {"pytest", "pytest-timeout", "playwright", "grpcio-tools"}
DASHBOARD_ONLY = {"streamlit", "pandas"}
# Sources every image's project wheel is made from, besides its packages (and so in every cache key).
PROJECT_COMMON = ("pyproject.toml", "protos")
# Extra files copied into the build context as they are.
EXTRA_CONTEXT = ("scripts/certs.py", ".streamlit/config.toml")


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def image_name(name: str, tag: str = TAG) -> str:
    return f"serversinc/{name}:{tag}"


def docker_client():
    import docker

    client = docker.from_env(timeout=600)
    client.ping()
    return client


# ---- base ------------------------------------------------------------------------------------
def base_recipe() -> str:
    """A short hash of what the local base is made of; a changed recipe makes a new base."""
    text = f"{SUITE} minbase {','.join(BASE_PACKAGES)} {(DOCKER_DIR / 'base' / 'cleanup.sh').read_text()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_mirror() -> str | None:
    """The Debian mirror this host's apt uses (deb822 or one-line sources), else None
    (debootstrap's own default). $DEBIAN_MIRROR wins."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if SUITE in suites and fields.get("URIs"):
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[-2 if parts[1].startswith("[") else 2] == SUITE:
                return parts[2] if parts[1].startswith("[") else parts[1]
    return None


def ensure_debootstrap() -> str:
    path = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK) else None)
    if path:
        return path
    log("installing debootstrap (apt)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def find_base(client, tag: str = BASE_TAG):
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return image if (image.labels or {}).get(RECIPE_LABEL) == base_recipe() else None


def make_base(client=None, tag: str = BASE_TAG, force: bool = False) -> str:
    """Make the local base image (debootstrap minbase + BASE_PACKAGES, `docker import`) unless
    an image with the same recipe exists. Returns its id. Needs root (debootstrap)."""
    client = client or docker_client()
    existing = None if force else find_base(client, tag)
    if existing is not None:
        log(f"base {tag} exists ({existing.short_id}); skipping (--force rebuilds)")
        return existing.id
    if os.geteuid() != 0:
        raise SystemExit("making the base image runs debootstrap, which needs root")
    debootstrap = ensure_debootstrap()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="serversinc-base-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        command = [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs)]
        mirror = debian_mirror()
        if mirror:
            command.append(mirror)
        log(f"debootstrap {SUITE} minbase + {', '.join(BASE_PACKAGES)} (about a minute)")
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            print(result.stdout[-4000:], file=sys.stderr)
            debootstrap_log = rootfs / "debootstrap" / "debootstrap.log"
            if debootstrap_log.exists():
                print(debootstrap_log.read_text()[-4000:], file=sys.stderr)
            raise SystemExit(f"debootstrap failed (exit {result.returncode})")
        subprocess.run(["sh", str(DOCKER_DIR / "base" / "cleanup.sh"), str(rootfs)], check=True)
        archive = work / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."], check=True)
        log(f"docker import -> {tag}")
        repository, _, image_tag = tag.partition(":")
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            f"LABEL {RECIPE_LABEL}={base_recipe()}",
            'CMD ["python3"]',
        ]
        with open(archive, "rb") as data:
            client.api.import_image_from_data(data, repository=repository, tag=image_tag or "latest",
                                              changes=changes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    image = client.images.get(tag)
    log(f"base {tag} made in {time.monotonic() - started:.0f} s ({image.attrs['Size'] / 1e6:.0f} MB)")
    return image.id


# ---- wheels ----------------------------------------------------------------------------------
def _requirement_name(line: str) -> str:
    return re.split(r"[\s=<>!~;\[]", line, maxsplit=1)[0].lower()


def requirement_sets() -> dict[str, list[str]]:
    """The pinned lines of requirements.txt each image set installs: core (api, agent, webhook)
    and dashboard (core + streamlit, pandas)."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = [line for line in lines if line and not line.startswith("#")]
    runtime = [line for line in pins if _requirement_name(line) not in NOT_IN_IMAGES]
    return {"core": [line for line in runtime if _requirement_name(line) not in DASHBOARD_ONLY],
            "dashboard": runtime}


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        print(result.stdout[-6000:], file=sys.stderr)
        raise SystemExit(f"pip failed: {' '.join(args[:3])} ...")


def make_dependency_wheels() -> None:
    """build/wheels/<set>/: a wheel for every pinned requirement of the set and what it pulls in,
    plus requirements.txt; skipped when the set's pins are unchanged."""
    for name, pins in requirement_sets().items():
        folder = WHEELS / name
        text = "\n".join(pins) + "\n"
        stamp = folder / "requirements.txt"
        if stamp.exists() and stamp.read_text() == text and any(folder.glob("*.whl")):
            continue
        log(f"pip wheel: {name} requirements -> {folder.relative_to(ROOT)}/")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "pins.txt").write_text(text)
        _pip("wheel", "-q", "--prefer-binary", "-w", str(folder), "-r", str(folder / "pins.txt"))
        (folder / "pins.txt").rename(stamp)


def image_pyproject(text: str, packages) -> str:
    """pyproject.toml keeping only the console scripts whose module ships in the image: an image
    has no command that cannot run in it."""
    lines, in_scripts = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            in_scripts = stripped == "[project.scripts]"
        elif in_scripts and "=" in stripped and not stripped.startswith("#"):
            target = stripped.split("=", 1)[1].strip().strip("\"'")
            if target.split(".", 1)[0] not in packages:
                continue
        lines.append(line)
    return "".join(lines)


def _generate_protos(out: Path) -> None:
    """scripts/gen_protos.py's generate(), loaded from its file: scripts/ is not an installed package."""
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(out=out)


def project_wheel_dir(name: str) -> Path:
    return WHEELS / f"project-{name}"


def make_project_wheel(name: str) -> Path:
    """build/wheels/project-<image>/serversinc-*.whl: only the image's packages, with its generated
    gRPC code made from protos/ into a staging copy (the checkout's gen/ is not touched)."""
    image = IMAGES[name]
    folder = project_wheel_dir(name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    staging = Path(tempfile.mkdtemp(prefix=f"serversinc-{name}-wheel-"))
    try:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in image.packages:
            shutil.copytree(ROOT / package, staging / package, ignore=ignore)
        (staging / "pyproject.toml").write_text(image_pyproject((ROOT / "pyproject.toml").read_text(), image.packages))
        _generate_protos(staging / "gen")
        for generated in (staging / "gen").iterdir():
            if generated.is_dir() and generated.name not in image.generated:
                shutil.rmtree(generated)
        _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), str(staging))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wheels = list(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one project wheel in {folder}, found {wheels}")
    return wheels[0]


def make_wheels(names=None) -> None:
    """The dependency wheels and the project wheel of each image in `names` (default: all)."""
    started = time.monotonic()
    make_dependency_wheels()
    made = [make_project_wheel(name).parent.name for name in names or IMAGES]
    log(f"wheels ready in {time.monotonic() - started:.1f} s (project: {', '.join(made)})")


# ---- build -----------------------------------------------------------------------------------
def _files_under(path: Path):
    if path.is_file():
        yield path
        return
    for item in sorted(path.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts and item.suffix != ".pyc":
            yield item


def source_hash(name: str, base_id: str) -> str:
    """Everything an image is made from: its Dockerfile, docker/, the pins of its set, its
    packages and the protos, the extra context files and the base image id."""
    digest = hashlib.sha256(f"{name}\0{base_id}\0".encode())
    image = IMAGES[name]
    digest.update("\n".join(requirement_sets()[image.requirements]).encode())
    digest.update(image_pyproject((ROOT / "pyproject.toml").read_text(), image.packages).encode())
    for item in ("docker", *PROJECT_COMMON, *image.packages, *EXTRA_CONTEXT):
        for path in _files_under(ROOT / item):
            if path.parent == DOCKER_DIR / "base" or path.name == "README.md":
                continue
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def context_tar(name: str) -> io.BytesIO:
    """The build context for one image: docker/ (without base/), its wheel set, its own project
    wheel and EXTRA_CONTEXT, at the paths the Dockerfiles COPY from (repository layout)."""
    image = IMAGES[name]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(path: Path):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(ROOT)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(path, "rb") as handle:
                tar.addfile(info, handle)

        for path in _files_under(DOCKER_DIR):
            if DOCKER_DIR / "base" not in path.parents:
                add(path)
        for folder in (WHEELS / image.requirements, project_wheel_dir(name)):
            if not any(folder.glob("*.whl")):
                raise SystemExit(f"no wheels in {folder}: run `python scripts/images.py wheels`")
            for path in _files_under(folder):
                add(path)
        for item in EXTRA_CONTEXT:
            add(ROOT / item)
    buffer.seek(0)
    return buffer


def find_built(client, name: str, key: str, tag: str = TAG):
    import docker

    try:
        image = client.images.get(image_name(name, tag))
    except docker.errors.ImageNotFound:
        return None
    return image if (image.labels or {}).get(SOURCE_LABEL) == key else None


def build_image(client, name: str, base: str, key: str, tag: str = TAG, quiet: bool = False) -> str:
    dockerfile = IMAGES[name].dockerfile
    started = time.monotonic()
    context = context_tar(name)
    output: list[str] = []
    image_id = None
    for chunk in client.api.build(fileobj=context, custom_context=True, dockerfile=dockerfile,
                                  tag=image_name(name, tag), buildargs={"BASE_IMAGE": base},
                                  labels={SOURCE_LABEL: key}, rm=True, forcerm=True, pull=False,
                                  decode=True):
        if "error" in chunk:
            print("".join(output[-40:]), file=sys.stderr)
            raise RuntimeError(f"building {image_name(name, tag)} failed: {chunk['error'].strip()}")
        if "stream" in chunk:
            output.append(chunk["stream"])
            if not quiet and chunk["stream"].startswith("Step "):
                print(f"   [{name}] {chunk['stream'].strip()}", file=sys.stderr, flush=True)
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    image = client.images.get(image_name(name, tag))
    log(f"built {image_name(name, tag)} in {time.monotonic() - started:.1f} s "
        f"({image.attrs['Size'] / 1e6:.0f} MB)")
    return image_id or image.id


def build_images(client=None, base: str = BASE_TAG, names=None, tag: str = TAG, force: bool = False,
                 quiet: bool = False) -> dict[str, str]:
    """Build the images (all by default) from `base`; an image whose source hash label matches
    is kept. Makes the wheels only when something must be built. Returns name -> image id."""
    client = client or docker_client()
    names = list(names or IMAGES)
    base_id = client.images.get(base).id
    keys = {name: source_hash(name, base_id) for name in names}
    built = {} if force else {n: find_built(client, n, keys[n], tag) for n in names}
    result = {n: image.id for n, image in built.items() if image is not None}
    todo = [n for n in names if n not in result]
    if not todo:
        log(f"images up to date: {', '.join(image_name(n, tag) for n in names)}")
        return result
    make_wheels(todo)
    for name in todo:
        result[name] = build_image(client, name, base, keys[name], tag, quiet=quiet)
    return result


def ensure_images(client=None, base: str | None = None, names=None, quiet: bool = True) -> dict[str, str]:
    """For tests: the local base when `base` is None, then every image (cached)."""
    client = client or docker_client()
    if base is None:
        make_base(client)
        base = BASE_TAG
    return build_images(client, base=base, names=names, quiet=quiet)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="images.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    base = sub.add_parser("base", help=f"make the local base image {BASE_TAG}")
    base.add_argument("--force", action="store_true", help="remake it even when it exists")
    sub.add_parser("wheels", help="build the wheels into build/wheels/")
    for name in ("build", "all"):
        command = sub.add_parser(name, help="build the images" if name == "build" else "base, wheels, build")
        command.add_argument("--base", default=None,
                             help=f"base image (default {BASE_TAG}, made locally; users: {PUBLIC_BASE})")
        command.add_argument("--only", default="", help="comma-separated subset of " + ",".join(IMAGES))
        command.add_argument("--tag", default=TAG)
        command.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.command == "base":
        make_base(force=args.force)
    elif args.command == "wheels":
        make_wheels()
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip()] or list(IMAGES)
        unknown = set(names) - set(IMAGES)
        if unknown:
            parser.error(f"unknown image(s): {', '.join(sorted(unknown))}")
        client = docker_client()
        base_image = args.base
        if base_image is None:
            if args.command == "all":
                make_base(client)
            base_image = BASE_TAG
        build_images(client, base=base_image, names=names, tag=args.tag, force=args.force)
    log(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
