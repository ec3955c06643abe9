"""`serversinc-webhook`: run the GitHub webhook bridge (HTTP in, control-plane gRPC out).

    serversinc-webhook [--listen HOST:PORT] [--api HOST:PORT[,HOST:PORT...]] [--log-level info]

The control plane address and API token are found as every client finds them (client.connection:
--api, $SERVERSINC_API, the local default; $SERVERSINC_TOKEN or the api-token file). Several API
replicas may be listed, comma-separated: calls go to the first that answers (client.addresses).
$SERVERSINC_WEBHOOK_SECRET enables the shared URL POST /webhooks/github; each app's own URL
(POST /webhooks/github/<app>) uses the app's secret from the control plane.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bridge.app import create_app
from bridge.client import ControlPlaneClient
from bridge.settings import DEFAULT_LISTEN, WebhookSettings
from client.addresses import AddressError
from client.connection import Connection, TrustError, load_root_ca, load_token, resolve_address
from common.defaults import DEFAULT_API


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def build(settings: WebhookSettings, api: str | None = None):
    """The ASGI app wired to a control plane; also used by tests and the benchmark."""
    connection = Connection(resolve_address(api), load_token(), unary_timeout=settings.rpc_timeout,
                            root_ca=load_root_ca())
    client = ControlPlaneClient(connection, apps_ttl=settings.apps_ttl, negative_ttl=settings.negative_ttl,
                                secret_ttl=settings.secret_ttl, timeout=settings.rpc_timeout,
                                max_concurrent_creates=settings.max_concurrent_creates)
    return create_app(client, settings), connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serversinc-webhook", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--listen", default=None, help=f"HOST:PORT to serve HTTP on (default {DEFAULT_LISTEN}, "
                                                       "or $SERVERSINC_WEBHOOK_LISTEN)")
    parser.add_argument("--api", default=None, help="control plane address, or several replicas' comma-separated "
                                                    f"(default $SERVERSINC_API or {DEFAULT_API})")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    settings = WebhookSettings.from_env(listen=args.listen)
    try:
        host, port = parse_listen(settings.listen)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    try:
        app, connection = build(settings, args.api)
    except TrustError as exc:
        parser.error(str(exc))
    except AddressError as exc:
        parser.error(f"--api / $SERVERSINC_API: {exc}")
    logging.getLogger(__name__).info(
        "webhook bridge on http://%s:%d (control plane %s; shared URL %s)", host, port, connection.address,
        "enabled" if settings.global_secret else "disabled: SERVERSINC_WEBHOOK_SECRET unset")
    try:
        uvicorn.run(app, host=host, port=port, log_level=args.log_level, access_log=False,
                    server_header=False, proxy_headers=False, timeout_graceful_shutdown=5)
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
