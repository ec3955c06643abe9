"""The HTTP edge: GitHub deliveries in, `handler` decisions out, as JSON.

Per request, in this order, so that nothing about an unauthenticated request is acted upon:
  1. read the body, at most `max_body` + 1 bytes (more → 413);
  2. the content type must be application/json (else 415; GitHub's form encoding gets a hint);
  3. verify `X-Hub-Signature-256` over the raw bytes (missing or bad → 401; an unknown app on the
     per-app URL → 404), before any parsing;
  4. parse the JSON (malformed → 400), then let `handler.handle` decide.
The blocking parts (HMAC of up to 25 MiB, gRPC calls) run in a worker thread so the event loop
keeps accepting deliveries. No response ever carries a stack trace; details go to the log.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge import signature
from common import rules
from bridge.handler import UNAVAILABLE, Delivery, Reply, Unavailable, error, handle
from bridge.settings import WebhookSettings

log = logging.getLogger(__name__)

FORM_HINT = ("this endpoint accepts application/json only: in the repository's webhook settings "
             "choose Content type: application/json")


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (without reading further) once it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _reply(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


def create_app(control_plane_client, settings: WebhookSettings) -> Starlette:
    """The bridge's ASGI app. `control_plane_client` is a `client.ControlPlaneClient` (or any
    object with its methods: apps, app, webhook_secret, create_deployment)."""
    backend = control_plane_client

    def process(headers: dict, body: bytes, app_name: str | None) -> Reply:
        """Steps 3 and 4, in a worker thread."""
        given = headers.get(signature.HEADER.lower())
        if app_name is None:
            if not settings.global_secret:
                return error(404, "the shared webhook URL is not enabled (SERVERSINC_WEBHOOK_SECRET is "
                                  "unset); use the app's own URL from 'serversinc apps webhook <app>'")
            if not signature.verify(settings.global_secret, body, given):
                return error(401, "missing or invalid X-Hub-Signature-256")
        else:
            if not given:
                return error(401, "missing or invalid X-Hub-Signature-256")
            secret = backend.webhook_secret(app_name)
            if secret is None:
                return error(404, "not found")
            if not signature.verify(secret, body, given):
                # The secret may have changed since it was cached: check once against a fresh one.
                secret = backend.webhook_secret(app_name, max_age=settings.secret_retry_age)
                if secret is None:
                    return error(404, "not found")
                if not signature.verify(secret, body, given):
                    return error(401, "missing or invalid X-Hub-Signature-256")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return error(400, "the body is not valid JSON")
        if not isinstance(payload, dict):
            return error(400, "the body is not a JSON object")
        delivery = Delivery(headers.get("x-github-event", "").strip(),
                            headers.get("x-github-delivery", "").strip(), payload)
        return handle(backend, delivery, only_app=app_name)

    async def deliver(request: Request, app_name: str | None) -> JSONResponse:
        started = time.perf_counter()
        delivery_id = request.headers.get("x-github-delivery", "-")[:128]
        event = request.headers.get("x-github-event", "-")[:64]
        try:
            try:
                body = await _read_body(request, settings.max_body)
            except _TooLarge:
                reply = error(413, f"payload larger than {settings.max_body} bytes (GitHub caps webhook "
                                   "payloads at 25 MB)")
            else:
                media = _media_type(request)
                if media == "application/x-www-form-urlencoded":
                    reply = error(415, FORM_HINT)
                elif media != "application/json":
                    reply = error(415, "content type must be application/json")
                else:
                    headers = {k.lower(): v for k, v in request.headers.items()}
                    reply = await anyio.to_thread.run_sync(partial(process, headers, body, app_name))
        except ClientDisconnect:
            log.info("delivery %s: the sender went away before the body was read", delivery_id)
            reply = error(400, "incomplete request body")
        except Unavailable as exc:
            log.warning("delivery %s: control plane unreachable: %s", delivery_id, exc)
            reply = error(503, UNAVAILABLE)
        except Exception:
            log.exception("delivery %s: internal error", delivery_id)
            reply = error(500, "internal error; see the webhook bridge's log")
        log.info("delivery %s event %s app %s -> %d %s (%.1f ms)", delivery_id, event, app_name or "*",
                 reply.status, _summary(reply), (time.perf_counter() - started) * 1000)
        return _reply(reply)

    async def global_hook(request: Request) -> JSONResponse:
        return await deliver(request, None)

    async def app_hook(request: Request) -> JSONResponse:
        name = request.path_params["app"]
        if not rules.NAME.fullmatch(name):
            return _reply(error(404, "not found"))
        return await deliver(request, name)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhooks/github", global_hook, methods=["POST"]),
        Route("/webhooks/github/{app}", app_hook, methods=["POST"]),
    ])


def _summary(reply: Reply) -> str:
    body = reply.body
    if "deployments" in body:
        return ",".join(d["deployment"] for d in body["deployments"]) + (" (duplicate)" if body.get("duplicate") else "")
    return str(body.get("ignored") or body.get("error") or "")
