"""Label keys the agent puts on the containers and images it manages.

Containers are found again by these labels (never by name), so an agent restart, or a
second agent on the same engine, can tell whose containers are whose.
"""

MANAGED = "io.serversinc.managed"
APP = "io.serversinc.app"
DEPLOYMENT = "io.serversinc.deployment"
COMMIT = "io.serversinc.commit"
# Identifies the agent (its state directory) that owns the container, so two agents sharing
# one engine (tests, or a mistaken double install) never reconcile each other's containers.
AGENT = "io.serversinc.agent"
# On images: the fingerprint of the build settings (Dockerfile path, context directory) the image
# was built with; `<app>:<sha>` is reused only for the same fingerprint (agent.builder).
BUILD = "io.serversinc.build"
# The loopback port the agent pinned the container's port to (it survives restarts, so the
# router's address stays right); read back so no other container is ever given it.
HOST_PORT = "io.serversinc.host-port"
# On volumes: the app's own name for the volume (`data` of `--volume data:/data`); with MANAGED
# and APP it is how the agent knows a volume is the app's (agent.volumes), never by its name.
VOLUME = "io.serversinc.volume"
# On one-off containers (agent.one_off), which carry APP and AGENT but never MANAGED, so deploys,
# reconcile and the port picker never take one for an app container: the run's id, its kind
# ("run": serversinc run, "release": the release command), and for a detached run "true" and its
# timeout in seconds (a restarted agent follows it to its end again).
RUN = "io.serversinc.run"
KIND = "io.serversinc.kind"
DETACHED = "io.serversinc.detached"
TIMEOUT = "io.serversinc.timeout"
