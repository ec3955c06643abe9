#!/usr/bin/env python3
"""Container health checks (installed as /usr/local/bin/serversinc-healthcheck).

    serversinc-healthcheck grpc HOST:PORT [--certs DIR]   # grpc.health.v1 Check == SERVING
    serversinc-healthcheck grpc HOST:PORT --ca FILE       # the same over TLS verified with FILE (the API)
    serversinc-healthcheck http URL                       # any 2xx answer

gRPC: plaintext, unless --certs DIR holds ca.pem, control-plane.pem and control-plane-key.pem
and TUGBOAT_INSECURE is not set; then mutual TLS as the control plane (the agent refuses any
client without a certificate from its CA, even for the health check). With --ca FILE (the control
plane API): server-side TLS verified with that CA, or plaintext when SERVERSINC_API_PLAINTEXT is
set, as the API itself (common.api_tls). Exit 0 healthy, 1 not.
"""

import os
import sys


def check_grpc(address: str, certs: str | None, ca: str | None = None) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if ca:
        from common.api_tls import plaintext_requested

        if plaintext_requested():
            channel = grpc.insecure_channel(address)
        else:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(open(ca, "rb").read()))
        with channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=4)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    insecure = os.environ.get("TUGBOAT_INSECURE", "").lower() in ("1", "true", "yes", "on")
    files = [os.path.join(certs, f) for f in ("ca.pem", "control-plane.pem", "control-plane-key.pem")] if certs else []
    if files and not insecure and all(os.path.exists(f) for f in files):
        ca, cert, key = (open(f, "rb").read() for f in files)
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(ca, key, cert))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=4)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def check_http(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=4) as response:
        return 200 <= response.status < 300


def main(argv: list[str]) -> int:
    try:
        if len(argv) >= 2 and argv[0] == "grpc":
            certs = argv[argv.index("--certs") + 1] if "--certs" in argv else None
            ca = argv[argv.index("--ca") + 1] if "--ca" in argv else None
            return 0 if check_grpc(argv[1], certs, ca) else 1
        if len(argv) == 2 and argv[0] == "http":
            return 0 if check_http(argv[1]) else 1
    except Exception as exc:  # unhealthy, with the reason in `docker inspect`
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
