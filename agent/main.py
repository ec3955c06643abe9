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
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agent.server import run_server  # imported late so --help works without Docker

    config = AgentConfig.from_env(home=args.home, host=args.host, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with run_server(config, host=config.host) as (_server, port):
        print(f"tugboat listening on {config.host}:{port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
