"""Structured logs: one JSON object per line, carrying the deployment id of the work in progress.

The worker sets the deployment id in a context variable for the duration of a deployment, so
every log line written on its behalf (pipeline, recorder, adapters) can be filtered by it.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import datetime, timezone

deployment_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("deployment_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = deployment_id.get()
        if current is not None:
            entry["deployment"] = f"deployments/{current}"
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _DeploymentTag(logging.Filter):
    """For text logs: appends [deployments/N] when a deployment is in progress."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = deployment_id.get()
        record.deployment = f" [deployments/{current}]" if current is not None else ""
        return True


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.addFilter(_DeploymentTag())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(deployment)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
