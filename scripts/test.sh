#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing (apt, pip), starts a
# Docker engine when none is reachable and a PostgreSQL cluster of its own (and stops both after),
# then pytest. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"

ensure_system_packages
ensure_venv
ensure_postgres
ensure_docker
trap 'stop_postgres_if_started; stop_docker_if_started' EXIT
trap 'exit 130' INT TERM   # run the EXIT trap on Ctrl-C and kill too: no stray server stays
start_test_postgres

cd "$ROOT"
log "running the test suite"
"$VENV/bin/python" -m pytest "$@"
