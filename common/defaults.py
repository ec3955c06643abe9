"""Where each Serversinc process listens and keeps its state when nothing says otherwise, written once.

The control plane, the agent, the clients (CLI, webhook bridge, dashboard) and scripts/run.sh all
read these, so a default changed here changes for every one of them. The environment variables that
override a default are named next to it; each process reads its own overrides.

`python3 common/defaults.py` prints the shell assignments scripts/lib/setup.sh evaluates.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

LOOPBACK = "127.0.0.1"
API_PORT = 50051
AGENT_PORT = 50052
WEBHOOK_PORT = 8088
DASHBOARD_PORT = 8501
METRICS_PORT = 9464

# Control plane gRPC ($SERVERSINC_API).
DEFAULT_API = f"{LOOPBACK}:{API_PORT}"
API_ENV = "SERVERSINC_API"
# The address one control-plane replica listens on ($SERVERSINC_API_LISTEN), when $SERVERSINC_API
# is the clients' list of every replica; unset, a single $SERVERSINC_API is both.
API_LISTEN_ENV = "SERVERSINC_API_LISTEN"
# The local Tugboat agent ($SERVERSINC_AGENT).
DEFAULT_AGENT = f"{LOOPBACK}:{AGENT_PORT}"
AGENT_ENV = "SERVERSINC_AGENT"
# The webhook bridge's HTTP listener ($SERVERSINC_WEBHOOK_LISTEN).
DEFAULT_WEBHOOK = f"{LOOPBACK}:{WEBHOOK_PORT}"
WEBHOOK_LISTEN_ENV = "SERVERSINC_WEBHOOK_LISTEN"
# The control plane's Prometheus /metrics ($SERVERSINC_METRICS).
DEFAULT_METRICS = f"{LOOPBACK}:{METRICS_PORT}"
METRICS_ENV = "SERVERSINC_METRICS"
# The dashboard's port ($SERVERSINC_DASHBOARD_PORT).
DASHBOARD_PORT_ENV = "SERVERSINC_DASHBOARD_PORT"

# The state folder ($SERVERSINC_HOME) and, in it, the API token the control plane writes at its
# first start and every client on the same machine reads ($SERVERSINC_TOKEN overrides the file).
HOME_ENV = "SERVERSINC_HOME"
TOKEN_ENV = "SERVERSINC_TOKEN"
TOKEN_FILE = "api-token"


def serversinc_home(environ=None) -> Path:
    """$SERVERSINC_HOME, else `<repo>/.serversinc` (where scripts/run.sh keeps database, certificates, logs)."""
    environ = os.environ if environ is None else environ
    home = environ.get(HOME_ENV)
    return Path(home) if home else REPO_ROOT / ".serversinc"


def shell_assignments(environ=None) -> str:
    """The state folder and the addresses scripts/run.sh starts the processes on: each override from the environment, else the default."""
    environ = os.environ if environ is None else environ
    values = {
        "SERVERSINC_HOME": str(serversinc_home(environ)),
        "API": environ.get(API_ENV) or DEFAULT_API,
        "AGENT": environ.get(AGENT_ENV) or DEFAULT_AGENT,
        "WEBHOOK": environ.get(WEBHOOK_LISTEN_ENV) or DEFAULT_WEBHOOK,
        "DASHBOARD_PORT": environ.get(DASHBOARD_PORT_ENV) or str(DASHBOARD_PORT),
    }
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


if __name__ == "__main__":
    print(shell_assignments(), end="")
