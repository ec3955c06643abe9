#!/usr/bin/env bash
# Runs the platform on the embedded defaults: SQLite under .serversinc/, the front door (HAProxy,
# its own supervised service), a local Tugboat agent, the control-plane API and its deploy workers.
# The front door and the agent are restarted with back-off when they exit (apps keep serving
# meanwhile). Prints the addresses; Ctrl-C stops everything this script started.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"

ensure_system_packages
ensure_venv
ensure_docker
mkdir -p "$SERVERSINC_HOME/logs"

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_docker_if_started
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

start() {
  # start NAME CMD...: runs CMD in the background, its output in .serversinc/logs/NAME.log
  local name="$1"; shift
  "$@" >>"$SERVERSINC_HOME/logs/$name.log" 2>&1 &
  PIDS+=($!)
}

supervise() {
  # supervise NAME CMD...: like start, but restarts CMD when it exits, waiting 1 s, then twice as
  # long after each quick exit (at most 30 s; back to 1 s after a run of a minute). Ctrl-C (TERM
  # to the loop) stops CMD and the loop.
  local name="$1"; shift
  (
    child="" pause=""
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; [ -n "$pause" ] && kill "$pause" 2>/dev/null
          [ -n "$child" ] && wait "$child" 2>/dev/null; exit 0' TERM INT
    backoff=1
    while true; do
      started=$SECONDS
      "$@" >>"$SERVERSINC_HOME/logs/$name.log" 2>&1 &
      child=$!
      rc=0; wait "$child" || rc=$?
      child=""
      if (( SECONDS - started >= 60 )); then backoff=1; fi
      log "$name exited ($rc); restarting it in ${backoff}s (log: $SERVERSINC_HOME/logs/$name.log)"
      sleep "$backoff" & pause=$!
      wait "$pause" || true
      pause=""
      backoff=$(( backoff * 2 > 30 ? 30 : backoff * 2 ))
    done
  ) &
  PIDS+=($!)
}

wait_grpc() {
  # wait_grpc ADDRESS CERTS_DIR [tls]: until its health check answers, over TLS verified with
  # CERTS_DIR/ca.pem; as the control plane's client certificate too (mutual TLS) unless "tls".
  "$VENV/bin/python" - "$@" <<'PY'
import sys, grpc
from pathlib import Path
from grpc_health.v1 import health_pb2, health_pb2_grpc
address, certs = sys.argv[1], Path(sys.argv[2])
client = () if sys.argv[3:] == ["tls"] else ((certs / "control-plane-key.pem").read_bytes(),
                                             (certs / "control-plane.pem").read_bytes())
channel = grpc.secure_channel(address, grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), *client))
grpc.channel_ready_future(channel).result(timeout=30)
health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
PY
}

# Mutual TLS between the control plane and the agent, and TLS on the API: a CA and the
# certificates from it, made once (the CLI, dashboard and bridge verify the API with its ca.pem).
"$VENV/bin/python" "$ROOT/scripts/certs.py" --out "$SERVERSINC_HOME/certs" --agent-host "${AGENT%:*}" \
  --api-host "${API%:*}" >/dev/null
# The control plane first: on start it writes a one-time join token for the local agent, which
# registers its secret (generated once into .serversinc/agent/.env) with it.
start api "$VENV/bin/serversinc-api" --listen "$API" --agent "$AGENT"
wait_grpc "$API" "$SERVERSINC_HOME/certs" tls || { tail -20 "$SERVERSINC_HOME/logs/api.log" >&2; exit 1; }
# The front door before the agent: a service of its own that outlives the agent (which adopts it).
supervise frontdoor "$VENV/bin/tugboat-frontdoor" --state-dir "$SERVERSINC_HOME/agent"
for _ in $(seq 1 100); do
  "$VENV/bin/tugboat-frontdoor" --check --state-dir "$SERVERSINC_HOME/agent" && break
  sleep 0.2
done
"$VENV/bin/tugboat-frontdoor" --check --state-dir "$SERVERSINC_HOME/agent" \
  || { tail -20 "$SERVERSINC_HOME/logs/frontdoor.log" >&2; exit 1; }
supervise agent "$VENV/bin/tugboat" --listen "$AGENT" --home "$SERVERSINC_HOME/agent" \
  --join "$API" --join-token-file "$SERVERSINC_HOME/local-join-token"
wait_grpc "$AGENT" "$SERVERSINC_HOME/certs" || { tail -20 "$SERVERSINC_HOME/logs/agent.log" >&2; exit 1; }
start webhook "$VENV/bin/serversinc-webhook" --listen "$WEBHOOK" --api "$API"
SERVERSINC_API="$API" start dashboard "$VENV/bin/streamlit" run "$ROOT/dashboard/app.py" \
  --server.address 127.0.0.1 --server.port "$DASHBOARD_PORT" --server.headless true \
  --client.toolbarMode minimal --browser.gatherUsageStats false

cat <<MSG

Serversinc is running.
  control plane (gRPC)  $API   (TLS; clients verify it with $SERVERSINC_HOME/certs/ca.pem)
  Tugboat agent (gRPC)  $AGENT   (mutual TLS + secret)
  app front door        http://<app>.localhost:8000   (HAProxy; keeps serving while the agent restarts)
  dashboard             http://127.0.0.1:$DASHBOARD_PORT
  webhook bridge        http://$WEBHOOK/webhooks/github/<app>   (serversinc apps webhook <app>)
  state and logs        $SERVERSINC_HOME
  CLI                   $VENV/bin/serversinc --help
Ctrl-C stops everything.
MSG
# Returns when an unsupervised process exits (the front door and the agent are restarted by their
# loops); Ctrl-C runs the INT trap instead, which stops everything and exits.
wait -n "${PIDS[@]}" || true
log "a process exited; see $SERVERSINC_HOME/logs/ (stopping the rest)"
exit 1
