#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing (apt, pip), starts a
# Docker engine when none is reachable (and stops it after), then pytest. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"

ensure_system_packages
ensure_venv
ensure_docker
trap stop_docker_if_started EXIT

cd "$ROOT"
log "running the test suite"
"$VENV/bin/python" -m pytest "$@"
