# Shared set-up for scripts/run.sh and scripts/test.sh (sourced, not run).
# Installs what is missing (apt and pip), regenerates the gRPC code, and makes a Docker engine
# reachable. Idempotent: a second run on the same machine does almost nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# SERVERSINC_HOME, API, AGENT, WEBHOOK, DASHBOARD_PORT: the environment's, else common/defaults.py's
# (standard library only, so the system python3 reads it before the venv exists).
eval "$(python3 "$ROOT/common/defaults.py")"
export SERVERSINC_HOME
VENV="$ROOT/.venv"
STARTED_DOCKERD=""

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

need_apt() {
  # need_apt CMD PACKAGE...: installs PACKAGEs when CMD is not on PATH.
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  APT_MISSING+=("$@")
}

ensure_system_packages() {
  APT_MISSING=()
  need_apt git git
  need_apt dockerd docker.io
  need_apt busybox busybox-static
  need_apt haproxy haproxy
  need_apt wrk wrk
  need_apt pebble pebble   # ACME test server (pebble + pebble-challtestsrv) for tests/https
  need_apt curl curl
  need_apt chromium chromium   # headless browser for the dashboard's browser tests
  need_apt debootstrap debootstrap          # the local base image for the container images
  need_apt docker-compose docker-compose    # validates docker-compose.yml
  need_apt ip iproute2                      # namespace test hosts (tests/support/hosts.py)
  need_apt nsenter util-linux               # runs their engines and agents in the namespaces
  need_apt docker-registry docker-registry  # a real registry for build-once/pull-by-digest tests (tests/support/registry.py)
  [ -x /bin/busybox ] && file_is_static /bin/busybox || APT_MISSING+=(busybox-static)
  for extra in "$@"; do need_apt "${extra%%:*}" "${extra#*:}"; done
  if [ ${#APT_MISSING[@]} -gt 0 ]; then
    log "installing system packages: ${APT_MISSING[*]}"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${APT_MISSING[@]}" >/dev/null
  fi
}

file_is_static() {
  # busybox-static's binary runs in a FROM scratch image; a dynamic one would not.
  ! ldd "$1" >/dev/null 2>&1
}

ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want; want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages (pinned in requirements.txt)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
    echo "$want" > "$stamp"
  fi
  log "generating gRPC code from protos/"
  "$VENV/bin/python" "$ROOT/scripts/gen_protos.py"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" >/dev/null 2>&1 \
    || "$VENV/bin/pip" install --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
}

BUF_VERSION="1.75.0"
BUF="$ROOT/.tools/node_modules/.bin/buf"

ensure_buf() {
  # buf (protobuf lint and breaking checks) from npm: @bufbuild/buf ships the binary. It goes into
  # the git-ignored .tools/, pinned, so CI and a laptop lint with the same rules.
  if [ -x "$BUF" ] && [ "$("$BUF" --version 2>/dev/null)" = "$BUF_VERSION" ]; then return 0; fi
  command -v npm >/dev/null 2>&1 || ensure_system_packages npm:npm
  log "installing buf $BUF_VERSION into .tools/"
  npm install --silent --no-audit --no-fund --prefix "$ROOT/.tools" "@bufbuild/buf@$BUF_VERSION" >/dev/null
  "$BUF" --version >/dev/null
}

docker_up() { docker info >/dev/null 2>&1 || "$VENV/bin/python" -c 'import docker,sys; docker.from_env().ping()' >/dev/null 2>&1; }

ensure_docker() {
  if docker_up; then return 0; fi
  log "starting dockerd (published ports bind to 127.0.0.1 only)"
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid  # left by a dockerd killed earlier: the next start would refuse
  fi
  mkdir -p "$SERVERSINC_HOME"
  nohup dockerd --ip 127.0.0.1 >"$SERVERSINC_HOME/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 120); do
    docker_up && return 0
    kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start; its log:" >&2
  tail -20 "$SERVERSINC_HOME/dockerd.log" >&2
  return 1
}

stop_docker_if_started() {
  [ -n "$STARTED_DOCKERD" ] || return 0
  # The suite's dockerd-restart test starts the engine again with the same command line, so the
  # engine to stop is the one in its pid file now, not necessarily the process started here.
  local pid="$STARTED_DOCKERD"
  if ! kill -0 "$pid" 2>/dev/null && [ -f /var/run/docker.pid ]; then pid="$(cat /var/run/docker.pid)"; fi
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the dockerd this script started"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
}

STARTED_POSTGRES_DIR=""

ensure_postgres() {
  # Debian's PostgreSQL for the tests' [postgres] half. Its binaries are not on PATH
  # (/usr/lib/postgresql/<version>/bin), so need_apt's PATH test would always miss them.
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null && return 0
  ensure_system_packages pg_ctl:postgresql
}

start_test_postgres() {
  # One PostgreSQL cluster of this run's own on a free loopback port (tests/support/postgres.py);
  # the tests make a database in it per test. A server the caller names is used as it is.
  if [ -n "${SERVERSINC_TEST_POSTGRES_URL:-}" ]; then
    log "tests use the PostgreSQL server in SERVERSINC_TEST_POSTGRES_URL"
    return 0
  fi
  STARTED_POSTGRES_DIR="$(mktemp -d /tmp/serversinc-test-pg.XXXXXX)"
  log "starting a PostgreSQL cluster for the tests"
  # --owner: stopped even if this script is killed before its EXIT trap runs.
  SERVERSINC_TEST_POSTGRES_URL="$(cd "$ROOT" && "$VENV/bin/python" -m tests.support.postgres start "$STARTED_POSTGRES_DIR" --owner $$)"
  export SERVERSINC_TEST_POSTGRES_URL
}

stop_postgres_if_started() {
  [ -n "$STARTED_POSTGRES_DIR" ] || return 0
  log "stopping the PostgreSQL cluster this script started"
  (cd "$ROOT" && "$VENV/bin/python" -m tests.support.postgres stop "$STARTED_POSTGRES_DIR") || true
  rm -rf "$STARTED_POSTGRES_DIR"
  STARTED_POSTGRES_DIR=""
}
