"""Certificates for mutual TLS between the control plane and Tugboat agents, and for the API's TLS.

    python scripts/certs.py --out .serversinc/certs [--agent-host NAME_OR_IP ...]
                            [--api-host NAME_OR_IP ...] [--days N] [--force]

makes, when missing (an existing file is never overwritten without --force):

- ``ca.pem`` / ``ca-key.pem``: a private certificate authority. Both sides trust only it.
- ``agent.pem`` / ``agent-key.pem``: the agent's server certificate (serverAuth), valid for
  ``localhost``, ``127.0.0.1`` and every ``--agent-host`` (the host part of the address the
  control plane dials; a name or an IP address).
- ``control-plane.pem`` / ``control-plane-key.pem``: the control plane's client certificate
  (clientAuth). The agent refuses, in the TLS handshake, any client without a certificate
  issued by ``ca.pem``.
- ``api.pem`` / ``api-key.pem``: the control-plane API's server certificate (serverAuth), valid
  for ``serversinc-api`` (the name a client of several replicas checks, common.api_tls),
  ``localhost``, ``127.0.0.1`` and every ``--api-host``. Clients verify it with ``ca.pem``.

Private keys are written with mode 0600 (temp file + rename, so a reader never sees half a key).

The agent reads ``ca.pem``, ``agent.pem`` and ``agent-key.pem``; the control plane reads
``ca.pem``, ``control-plane.pem``, ``control-plane-key.pem``, ``api.pem`` and ``api-key.pem``; API clients
read ``ca.pem`` alone. On more than one machine, copy
only those files; ``ca-key.pem`` stays where certificates are issued. A new agent needs none of
them copied: the join command ``serversinc servers add`` prints carries the CA's fingerprint, and
the agent gets ``ca.pem`` and its own certificate by CSR from the control plane (agent.enroll),
which signs with ``ca-key.pem``.

Rotation
--------
- An enrolled agent's certificate: ``serversinc servers rotate-cert NAME`` (no restart: the agent
  serves new connections with the new certificate at once).
- Leaf certificates (agent or control plane): delete the pair (``agent.pem`` and
  ``agent-key.pem``, say) and run the script again; a new leaf from the same CA is trusted by
  the other side as is. Both sides read their certificates at start: restart the agent to pick
  up a new ``agent.pem``, the control plane for a new ``control-plane.pem``. (``--force``
  replaces everything, the CA included.) An existing ``agent.pem`` that lacks a requested
  ``--agent-host`` is reported, not replaced.
- The CA: make a new CA in another directory (``--out new``), then for a transition put BOTH CA certificates in
  ``ca.pem`` (``cat old/ca.pem new/ca.pem > ca.pem``) on every side and restart: leaves of either
  CA are accepted. Re-issue every leaf from the new CA, restart, then remove the old CA from
  ``ca.pem`` and restart once more.

The functions (``make_ca``, ``make_leaf``, ``write_pem``, from common.pki, and ``ensure_certs``) are
importable so tests can mint throwaway CAs and expired or not-yet-valid certificates.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.api_tls import API_PAIR
from common.api_tls import api_hosts as api_names
from common.pki import (  # noqa: F401  (re-exported: tests and tools import them from here)
    CLIENT, DEFAULT_DAYS, DEFAULT_HOSTS, SERVER, Pair, exists, load_pair, make_ca, make_leaf,
    uncovered_hosts, write_pair, write_pem,
)

_exists = exists


def ensure_certs(out: str | Path, *, agent_hosts=(), api_hosts=(), days: int = DEFAULT_DAYS,
                 force: bool = False) -> list[str]:
    """Make whatever is missing in `out` (everything with `force`); returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    written: list[str] = []
    if force or not _exists(out, "ca"):
        ca = make_ca()
        write_pair(out, "ca", ca)
        written += ["ca.pem", "ca-key.pem"]
        force = True  # leaves of an old CA would no longer verify
    else:
        ca = load_pair(out, "ca")
    if force or not _exists(out, "agent"):
        hosts = [*DEFAULT_HOSTS, *agent_hosts]
        write_pair(out, "agent", make_leaf(ca, "tugboat-agent", usage=SERVER, hosts=hosts, days=days))
        written += ["agent.pem", "agent-key.pem"]
    else:
        missing = uncovered_hosts(load_pair(out, "agent").cert, agent_hosts)
        if missing:
            print(f"warning: {out / 'agent.pem'} does not cover {', '.join(missing)}; delete "
                  "agent.pem and agent-key.pem and run again to re-issue it from the same CA",
                  file=sys.stderr)
    if force or not _exists(out, "control-plane"):
        write_pair(out, "control-plane", make_leaf(ca, "serversinc-control-plane", usage=CLIENT, days=days))
        written += ["control-plane.pem", "control-plane-key.pem"]
    if force or not _exists(out, API_PAIR):
        write_pair(out, API_PAIR, make_leaf(ca, "serversinc-api", usage=SERVER, hosts=api_names(api_hosts), days=days))
        written += [f"{API_PAIR}.pem", f"{API_PAIR}-key.pem"]
    else:
        missing = uncovered_hosts(load_pair(out, API_PAIR).cert, api_names(api_hosts))
        if missing:
            print(f"warning: {out / 'api.pem'} does not cover {', '.join(missing)}; delete "
                  "api.pem and api-key.pem and run again to re-issue it from the same CA",
                  file=sys.stderr)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Make the CA and certificates for agent mutual TLS and the API's TLS.")
    parser.add_argument("--out", required=True, help="folder for the PEM files (e.g. .serversinc/certs)")
    parser.add_argument("--agent-host", action="append", default=[], metavar="NAME_OR_IP",
                        help="extra name or IP in the agent certificate (repeatable); "
                             "localhost and 127.0.0.1 are always included")
    parser.add_argument("--api-host", action="append", default=[], metavar="NAME_OR_IP",
                        help="extra name or IP in the API certificate (repeatable); "
                             "localhost, 127.0.0.1 and serversinc-api are always included")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="leaf certificate lifetime")
    parser.add_argument("--force", action="store_true",
                        help="replace existing files (a new CA and new leaf certificates)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    written = ensure_certs(args.out, agent_hosts=args.agent_host, api_hosts=args.api_host, days=args.days, force=args.force)
    print(f"certificates in {args.out}: " + (", ".join(written) + " written" if written
                                              else "all present, nothing changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
