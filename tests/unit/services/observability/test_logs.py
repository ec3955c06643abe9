"""Structured logs carry the deployment in progress."""

from __future__ import annotations

import json
import logging

from services.observability import logs


def test_json_lines_name_the_deployment_in_progress():
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("services.x", logging.INFO, __file__, 1, "phase %s", ("BUILD",), None)
    outside = json.loads(formatter.format(record))
    assert outside["message"] == "phase BUILD" and "deployment" not in outside
    token = logs.deployment_id.set(42)
    try:
        inside = json.loads(formatter.format(record))
    finally:
        logs.deployment_id.reset(token)
    assert inside["deployment"] == "deployments/42" and inside["level"] == "info"
