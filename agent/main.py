"""Console entry point `tugboat`: run the agent until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from agent.config import DEFAULT_HOST, AgentConfig


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tugboat", description="Serversinc Tugboat agent")
    parser.add_argument("--host", default=DEFAULT_HOST, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 50052)")
    parser.add_argument("--home", default=None,
                        help="state directory (default $TUGBOAT_HOME or <repo>/.serversinc/agent)")
    parser.add_argument("--front-door", default=None, metavar="HOST:PORT",
                        help="HAProxy front door address (default $TUGBOAT_FRONT_DOOR or 127.0.0.1:8000)")
    parser.add_argument("--router", choices=("haproxy", "direct"), default=None,
                        help="how apps are reached (default $TUGBOAT_ROUTER, else haproxy when "
                             "installed, else direct)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agent.server import run_server  # imported late so --help works without Docker

    config = AgentConfig.from_env(home=args.home, host=args.host, port=args.port,
                                  front_door=args.front_door, router=args.router)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from agent.router import RouterError

    try:
        with run_server(config, host=config.host) as (_server, port):
            print(f"tugboat listening on {config.host}:{port}"
                  + (f", front door on {config.front_door}" if config.front_door else ""),
                  flush=True)
            stop.wait()
    except RouterError as exc:
        print(f"tugboat: cannot start the front door on {config.front_door}: {exc}\n"
              "(choose another with --front-door HOST:PORT, or --router direct)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
