#!/usr/bin/env python3
"""Entry points of the serversinc/api image (installed as /usr/local/bin/serversinc-entrypoint).

    serversinc-entrypoint init        # one-shot, as root: certificates and the agent secret
    serversinc-entrypoint api [ARGS]  # serversinc-api ARGS, with the local agent's secret

`init` (the compose file's `init` service, run before the others) makes, when missing:
  - $SERVERSINC_HOME/certs/ with scripts/certs.py (CA, agent and control-plane certificates;
    an existing file is never overwritten),
  - $TUGBOAT_HOME/.env with a random TUGBOAT_SECRET_KEY (mode 0600; other lines kept),
and gives both to the image's user (uid 10001) so the control plane, which does not run as
root, can read its client certificate and the agent's secret. The agent runs as root and reads
them as they are. Running it again changes nothing.

`api` exports SERVERSINC_AGENT_SECRET from $TUGBOAT_HOME/.env when it is not set (the compose
file mounts the agent's state volume read-only at that path), then runs serversinc-api.
"""

import os
import subprocess
import sys
from pathlib import Path

from common.agent_secret import load_or_create_secret, read_env_secret

HOME = Path(os.environ.get("SERVERSINC_HOME", "/data"))
AGENT_HOME = Path(os.environ.get("TUGBOAT_HOME", str(HOME / "agent")))
CERTS = Path(os.environ.get("SERVERSINC_CERTS", str(HOME / "certs")))
USER_ID = int(os.environ.get("SERVERSINC_UID", "10001"))


def chown_tree(path: Path) -> None:
    if os.geteuid() != 0 or not path.exists():
        return
    if not path.is_dir():
        os.lchown(path, USER_ID, USER_ID)
        return
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, f) for f in files + dirs)]:
            os.lchown(name, USER_ID, USER_ID)


def init() -> int:
    HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "/opt/serversinc/scripts/certs.py", "--out", str(CERTS),
                    *sys.argv[2:]], check=True)
    wrote = not read_env_secret(AGENT_HOME / ".env")
    load_or_create_secret(AGENT_HOME / ".env")
    for path in (CERTS, AGENT_HOME / ".env"):
        chown_tree(path)
    if os.geteuid() == 0:
        os.lchown(HOME, USER_ID, USER_ID)
    print(f"serversinc init: certificates in {CERTS}; agent secret in {AGENT_HOME / '.env'} "
          f"({'created' if wrote else 'kept'})", flush=True)
    return 0


def api() -> int:
    if not os.environ.get("SERVERSINC_AGENT_SECRET"):
        secret = read_env_secret(AGENT_HOME / ".env")
        if secret:
            os.environ["SERVERSINC_AGENT_SECRET"] = secret
    os.execvp("serversinc-api", ["serversinc-api", *sys.argv[2:]])
    return 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "api"
    if command == "init":
        sys.exit(init())
    if command == "api":
        sys.exit(api())
    os.execvp(sys.argv[1], sys.argv[1:])  # anything else runs as given (a shell, the CLI, ...)
