"""Console entry point `tugboat`: run the agent until interrupted.

With the HAProxy router the agent adopts the front door service (`tugboat-frontdoor`), starting
one detached when none runs; stopping or killing the agent leaves it serving."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from agent.config import DEFAULT_PORT, AgentConfig


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tugboat", description="Serversinc Tugboat agent",
        epilog="Only the control plane may call the agent: mutual TLS with the certificates in "
               "--certs, and every call must carry the agent secret (TUGBOAT_SECRET_KEY, else "
               "the one in <home>/.env, generated on first start).")
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"listen port (default {DEFAULT_PORT})")
    parser.add_argument("--listen", default=None, metavar="HOST:PORT",
                        help="listen address and port in one (instead of --host and --port)")
    parser.add_argument("--home", default=None,
                        help="state directory (default $TUGBOAT_HOME or <repo>/.serversinc/agent)")
    parser.add_argument("--front-door", default=None, metavar="HOST:PORT",
                        help="HAProxy front door address (default $TUGBOAT_FRONT_DOOR or 127.0.0.1:8000)")
    parser.add_argument("--https-front-door", default=None, metavar="HOST:PORT",
                        help="HTTPS front door address, or 'off' (default $TUGBOAT_HTTPS_FRONT_DOOR, "
                             "else 127.0.0.1:8443 beside the default front door, off beside "
                             "an explicit --front-door); :443 on a production server")
    parser.add_argument("--acme-directory", default=None, metavar="URL",
                        help="ACME directory: production (Let's Encrypt, the default), staging, "
                             "off, or a URL (default $TUGBOAT_ACME_DIRECTORY)")
    parser.add_argument("--acme-ca-bundle", default=None, metavar="PEM",
                        help="CA bundle to trust a private ACME server with, e.g. pebble's "
                             "(default $TUGBOAT_ACME_CA_BUNDLE)")
    parser.add_argument("--router", choices=("haproxy", "direct"), default=None,
                        help="how apps are reached (default $TUGBOAT_ROUTER, else haproxy when "
                             "installed, else direct)")
    trust = parser.add_argument_group("trust")
    trust.add_argument("--certs", default=None, metavar="DIR",
                       help="folder with ca.pem, agent.pem, agent-key.pem (default $TUGBOAT_CERTS, "
                            "else <home>/../certs; scripts/certs.py makes them)")
    trust.add_argument("--insecure", action="store_true", default=None,
                       help="serve plaintext gRPC without client certificates (local tests only; "
                            "or TUGBOAT_INSECURE=1)")
    trust.add_argument("--allow", default=None, metavar="IP_OR_CIDR,...",
                       help="only these caller addresses, e.g. 127.0.0.1,10.0.0.0/8 "
                            "(default $TUGBOAT_ALLOW; empty allows any)")
    trust.add_argument("--join", default=None, metavar="API_ADDRESS",
                       help="control plane API to register with, over TLS verified with the --certs "
                            "folder's ca.pem, or with the CA --ca-hash names (default $TUGBOAT_JOIN)")
    tokens = trust.add_mutually_exclusive_group()
    tokens.add_argument("--join-token", default=None, metavar="TOKEN",
                        help="one-time join token (visible in 'ps' while the agent runs: prefer "
                             "$TUGBOAT_JOIN_TOKEN, as the join command does, or --join-token-file)")
    tokens.add_argument("--join-token-file", default=None, metavar="PATH",
                        help="read the join token from this file (keeps it out of 'ps')")
    trust.add_argument("--ca-hash", default=None, metavar="sha256:HEX",
                       help="the platform CA's fingerprint from the join command: with no "
                            "certificates in --certs, the agent checks the API's CA against it, "
                            "then fetches its own certificate by CSR (default $TUGBOAT_CA_HASH)")
    args = parser.parse_args(argv)
    if args.listen and (args.host is not None or args.port is not None):
        parser.error("--listen replaces --host and --port; give one or the other")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agent.server import run_server  # imported late so --help works without Docker
    from agent.trust import TrustError

    try:
        config = AgentConfig.from_env(home=args.home, host=args.host, port=args.port,
                                      front_door=args.front_door, router=args.router,
                                      certs=args.certs, insecure=args.insecure, allow=args.allow,
                                      join=args.join, join_token=args.join_token,
                                      join_token_file=args.join_token_file, listen=args.listen,
                                      https=args.https_front_door,
                                      acme_directory=args.acme_directory,
                                      acme_ca_bundle=args.acme_ca_bundle)
    except ValueError as exc:
        print(f"tugboat: {exc}", flush=True)
        return 2
    from agent.enroll_start import enroll_if_asked

    config, refused = enroll_if_asked(config, args.ca_hash)
    if refused:
        print(f"tugboat: {refused}", flush=True)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from agent.router import RouterError

    try:
        with run_server(config, host=config.host) as (_server, port):
            print(f"tugboat listening on {config.host}:{port}"
                  + (" (PLAINTEXT, --insecure)" if config.insecure else " (mutual TLS)")
                  + (f", front door on {config.front_door}" if config.front_door else "")
                  + (f", HTTPS on {config.https_front_door}" if config.https_front_door else ""),
                  flush=True)
            stop.wait()
    except TrustError as exc:
        print(f"tugboat: {exc}", flush=True)
        return 2
    except RouterError as exc:
        print(f"tugboat: cannot adopt or start the front door on {config.front_door}: {exc}\n"
              "(choose another with --front-door HOST:PORT, or --router direct)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
