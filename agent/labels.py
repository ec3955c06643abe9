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
