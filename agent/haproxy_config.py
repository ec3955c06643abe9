"""HAProxy config rendering (pure): haproxy.cfg and hosts.map from the typed routes.

One backend per app with a fixed pool of server slots (`route_policy.SLOTS`), a front door
that picks the backend from the Host header through the map file, and a 404 for unknown hosts.
The serving slots are rendered enabled at their containers' ports, every other slot disabled,
so a (re)start of HAProxy comes up with the persisted routes.

Every slot carries the app's HTTP health check (`route_policy.Check`), disabled ones too: checks
can only be turned on at run time for a server that has them in the config, and a slot put in
rotation by the runtime API must be checked from then on. A backend whose servers are all down
answers HAProxy's 503 with a page that says the app is unavailable.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from typing import Mapping, Sequence

from agent.route_policy import SLOTS, Check, Route, hosts
from common.rules import MAX_DRAIN_SECONDS
from agent.tls_files import TlsFiles

TUNNEL_TIMEOUT_SECONDS = MAX_DRAIN_SECONDS
PLACEHOLDER_PORT = 1  # an unused slot points here, in maintenance; never gets traffic
UNKNOWN_BACKEND = "no_app"
MAINTENANCE_MAP = "maintenance.map"


def backend_name(app: str) -> str:
    return f"app_{app}"


def status_regex(low: int, high: int) -> str:
    """An anchored regex matching exactly the three-digit statuses low..high (for
    `http-check expect rstatus`, which has no range form)."""
    parts = []
    code = low
    while code <= high:
        if code % 100 == 0 and code + 99 <= high:
            parts.append(f"{code // 100}[0-9][0-9]")
            code += 100
        elif code % 10 == 0 and code + 9 <= high:
            parts.append(f"{code // 10}[0-9]")
            code += 10
        else:
            parts.append(str(code))
            code += 1
    return "^(" + "|".join(parts) + ")$"


def unavailable_page(app: str) -> str:
    """The 503 body when none of the app's containers answers its health check."""
    return (f"<!doctype html><title>{app} is unavailable</title><h1>{app} is unavailable</h1>"
            "<p>No healthy container of this app answers right now. It is served again as "
            "soon as one passes its health check.</p>")


def maintenance_page(app: str, message: str = "") -> str:
    """The 503 page of an app in maintenance mode; `message` is the user's text, escaped."""
    text = html.escape(message) if message else f"{html.escape(app)} is down for maintenance."
    return (f"<!doctype html><meta charset=\"utf-8\"><title>{app}: maintenance</title>"
            f"<h1>{app} is in maintenance</h1><p>{text}</p>")


def maintenance_value(app: str, message: str = "") -> str:
    """The page as the maintenance map holds it: base64, so that no character of the user's
    message can reach HAProxy's runtime API or map file syntax (spaces, ';', newlines)."""
    return base64.b64encode(maintenance_page(app, message).encode()).decode()


def maintenance_lines(app: str, map_path: Path) -> list[str]:
    """The backend's maintenance switch: a page answered by HAProxy while the app's entry is in
    the maintenance map. The map changes at run time (`add map`/`del map`), so turning
    maintenance on or off needs no reload, and the containers are never asked."""
    return [
        f"    http-request set-var(txn.maintenance) str({backend_name(app)}),map({map_path})",
        '    http-request return status 503 content-type "text/html; charset=utf-8" '
        'hdr Cache-Control no-store hdr Retry-After 120 '
        'lf-string "%[var(txn.maintenance),b64dec]" if { var(txn.maintenance) -m found }',
    ]


def check_lines(app: str, check: Check) -> list[str]:
    """The backend's health-check directives and its 503 page."""
    # Safe in a single-quoted HAProxy word: no quote, space, '#', '$' or backslash survives.
    path = quote(check.path, safe="/?&=%:@!*+,;-._~")
    return [
        f"    timeout check {check.timeout_ms}ms",
        f'    http-error status 503 content-type "text/html; charset=utf-8" '
        f"string '{unavailable_page(app)}'",
        "    option httpchk",
        f"    http-check send meth GET uri '{path}' ver HTTP/1.1 hdr Host 127.0.0.1 "
        "hdr User-Agent tugboat-health",
        f"    http-check expect rstatus '{status_regex(check.status_min, check.status_max)}'",
    ]


def server_options(check: Check) -> str:
    return f"check inter {check.interval_ms}ms rise {check.rise} fall {check.fall}"


@dataclass(frozen=True)
class TlsFrontend:
    """The HTTPS bind of the front door and the TLS files it reads (`agent.tls_files`)."""

    host: str
    port: int
    files: TlsFiles


def tls_lines(tls: TlsFrontend) -> tuple[list[str], list[str]]:
    """The HTTPS bind, and the front door rules that go with it: HTTP-01 answers, the HTTP ->
    HTTPS redirect and HSTS. The three maps change at run time (`add map`/`del map`), so a
    certificate coming into service or a challenge never needs a reload.

    The challenge answer comes first: a host that redirects to HTTPS must still answer its
    challenge over plain HTTP (that is how its first certificate is issued)."""
    files = tls.files
    bind = (f"    bind {tls.host}:{tls.port} ssl crt {files.default_cert} "
            f"crt-list {files.crt_list} alpn h2,http/1.1")
    rules = [
        "    http-request set-var(txn.acme_answer) path,field(4,/),"
        f"map({files.challenges_map}) if {{ path_beg /.well-known/acme-challenge/ }}",
        '    http-request return status 200 content-type "text/plain" '
        'lf-string "%[var(txn.acme_answer)]" if { var(txn.acme_answer) -m found }',
        f"    http-request set-var(txn.https_port) var(txn.route_host),map({files.redirect_map}) "
        "if !{ ssl_fc }",
        "    http-request redirect location "
        "https://%[var(txn.route_host)]:%[var(txn.https_port)]%[capture.req.uri] code 308 "
        "if { var(txn.https_port) -m found }",
        f"    http-request set-var(txn.hsts) var(txn.route_host),map({files.hsts_map}) "
        "if { ssl_fc }",
        '    http-response set-header Strict-Transport-Security "%[var(txn.hsts)]" '
        "if { var(txn.hsts) -m found }",
    ]
    return [bind], rules


@dataclass(frozen=True)
class RenderedConfig:
    config: str
    host_map: str
    maintenance_map: str = ""


def render_config(*, front_host: str, front_port: int, run_dir: Path, generation: int,
                  routes: Mapping[str, Route], server_maxconn: int = 0,
                  pool: Sequence[str] = SLOTS, tls: TlsFrontend | None = None) -> RenderedConfig:
    """haproxy.cfg and hosts.map for `routes`; `node` carries the generation so a reload can
    be confirmed. With `tls`, the front door also listens for HTTPS (`tls_lines`)."""
    map_path = run_dir / "hosts.map"
    maintenance_map = run_dir / MAINTENANCE_MAP
    lines = [
        "# Written by the Tugboat agent; changes are overwritten.",
        "global",
        "    master-worker",
        f"    node tugboat-{generation}",
        f"    stats socket {run_dir / 'admin.sock'} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    maxconn 4096",
        # After a reload the previous worker finishes its in-flight requests and keeps its open
        # WebSockets and event streams (a reload must not cut them) as long as a drain may last;
        # it exits as soon as they close, and a retired container's are closed by its stop.
        f"    hard-stop-after {MAX_DRAIN_SECONDS}s",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        # On a reload the old worker answers the next request of an idle keep-alive connection
        # with "Connection: close" instead of closing it under the client (which, measured,
        # fails a request that was being sent); hard-stop-after bounds how long that waits.
        "    option idle-close-on-response",
        "    option redispatch 1",
        # Only retry when the connection to the container could not be made: the request was
        # never sent, so even a POST is not duplicated.
        "    retries 3",
        "    retry-on conn-failure",
        "    timeout connect 3s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 60s",
        "    timeout queue 30s",
        # An upgraded connection (WebSocket) or a server-sent event stream may sit idle for long:
        # it stays open until the app or the client closes it, through deploys (the old
        # container keeps its connections until they close or its drain deadline).
        f"    timeout tunnel {TUNNEL_TIMEOUT_SECONDS}s",
    ]
    if server_maxconn > 0:
        # At most this many connections at once to one container; more wait in HAProxy's queue
        # instead of overflowing the app's listen backlog (dropped SYNs cost 1 s each).
        lines.append(f"    default-server maxconn {server_maxconn}")
    tls_binds, tls_rules = tls_lines(tls) if tls is not None else ([], [])
    lines += [
        "",
        "frontend front_door",
        f"    bind {front_host}:{front_port}",
        *tls_binds,
        "    http-request set-var(txn.route_host) req.hdr(host),field(1,:),lower",
        *tls_rules,
        f"    use_backend %[var(txn.route_host),map({map_path},{UNKNOWN_BACKEND})]",
        f"    default_backend {UNKNOWN_BACKEND}",
        "",
        f"backend {UNKNOWN_BACKEND}",
        '    http-request return status 404 content-type "text/plain" '
        'string "no app is routed for this host"',
    ]
    map_lines = []
    maintenance_lines_ = []
    for app in sorted(routes):
        route = routes[app]
        ports = {s.slot: s.host_port for s in route.servers if s.host_port}
        lines += ["", f"backend {backend_name(app)}", "    balance roundrobin"]
        lines += maintenance_lines(app, maintenance_map)
        if route.maintenance:
            maintenance_lines_.append(
                f"{backend_name(app)} {maintenance_value(app, route.maintenance_message)}")
        lines += check_lines(app, route.check)
        options = server_options(route.check)
        for slot in pool:
            if slot in ports:
                lines.append(f"    server {slot} 127.0.0.1:{ports[slot]} {options}")
            else:
                lines.append(f"    server {slot} 127.0.0.1:{PLACEHOLDER_PORT} disabled {options}")
        map_lines += [f"{host} {backend_name(app)}" for host in hosts(app, route)]
    return RenderedConfig("\n".join(lines) + "\n", "\n".join(map_lines) + ("\n" if map_lines else ""),
                          "".join(line + "\n" for line in maintenance_lines_))
