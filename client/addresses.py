"""The control plane's address setting — one `host:port`, or several API replicas as
`host:port,host:port` — and the single gRPC target that reaches whichever of them answers.

Failover is gRPC's own, on purpose. One channel gets every replica's address and the default
`pick_first` policy: a call made while no connection is up connects to the addresses in the order
given and goes to the first that accepts, so a replica that is down (connection refused) is passed
over before anything is sent, for writes as well as reads; the channel then stays with that healthy
replica until its connection breaks. Nothing here resends a call that may have reached a server:
that is decided per method in `client.connection` (only reads are retried) and gRPC's transparent
retries cover the streams that provably never left the client.

gRPC's `ipv4:`/`ipv6:` targets take a list of IP literals, its `dns:` target only one name, so a
list that holds host names is resolved here, when the channel opens (a long-lived client resolves
again when it opens a new channel). A mix of IPv4 and IPv6 addresses becomes one `ipv6:` list with
IPv4-mapped addresses, which gRPC connects to over IPv4. A single address is passed to gRPC exactly
as written, as before (`localhost:50051`, `dns:///host:port`, `unix:/path` all keep working).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Callable, Iterable

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressError(ValueError):
    """The address setting cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class Endpoint:
    """One `host:port` of the list; `host` without IPv6 brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def ip(self) -> IPAddress | None:
        """The host as an IP address, or None for a host name."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def split_list(value: str) -> list[str]:
    """The entries of a comma-separated setting, trimmed; empty entries (a trailing comma) dropped."""
    return [entry.strip() for entry in (value or "").split(",") if entry.strip()]


def is_list(value: str) -> bool:
    return len(split_list(value)) > 1


def parse_endpoint(entry: str) -> Endpoint:
    """'host:port' or '[v6]:port' -> Endpoint; AddressError saying what is wrong otherwise."""
    host, sep, port = entry.rpartition(":")
    if any(c.isspace() or c in "/@?#" for c in host):
        raise AddressError(f"{entry!r}: {host!r} is not a host name or IP address (a list takes HOST:PORT entries)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ipv6(host):
            raise AddressError(f"{entry!r}: only an IPv6 address goes in brackets")
    elif ":" in host:
        raise AddressError(f"{entry!r}: write an IPv6 address in brackets, e.g. [::1]:50051")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressError(f"{entry!r} is not HOST:PORT (a port from 1 to 65535)")
    return Endpoint(host, int(port))


def parse_addresses(value: str) -> list[str]:
    """Checks the setting: one address of any form gRPC takes, or a list of HOST:PORT entries.

    Returns the entries. A list entry must be HOST:PORT because it is turned into a gRPC address
    list; a single address is left to gRPC, as it always was."""
    entries = split_list(value)
    if not entries:
        raise AddressError("no control plane address given (expected HOST:PORT or HOST:PORT,HOST:PORT)")
    if len(entries) > 1:
        for entry in entries:
            parse_endpoint(entry)
        if len(set(entries)) != len(entries):
            raise AddressError(f"{value!r} names the same address twice")
    return entries


def describe(value: str) -> str:
    """The setting as a person reads it in a message: 'h:1', or 'any of h:1, h:2'."""
    entries = split_list(value)
    if len(entries) > 1:
        return "any of " + ", ".join(entries)
    return entries[0] if entries else value


Resolver = Callable[[str, int], list[IPAddress]]


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """The addresses a host name resolves to for a TCP connection, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def resolved(endpoints: Iterable[Endpoint], resolve: Resolver = resolve_host) -> list[tuple[IPAddress, int]]:
    """Each endpoint as IP addresses, in list order, without repeats. A name that does not resolve
    is left out (logged): the other replicas still serve."""
    out: list[tuple[IPAddress, int]] = []
    for endpoint in endpoints:
        ip = endpoint.ip
        if ip is not None:
            candidates = [ip]
        else:
            try:
                candidates = resolve(endpoint.host, endpoint.port)
            except OSError as err:
                log.warning("control plane address %s does not resolve (%s); trying the others", endpoint, err)
                continue
        for candidate in candidates:
            if (candidate, endpoint.port) not in out:
                out.append((candidate, endpoint.port))
    return out


def target_for(addresses: list[tuple[IPAddress, int]]) -> str:
    """A gRPC `ipv4:` (all IPv4) or `ipv6:` target listing `addresses` in order."""
    if all(ip.version == 4 for ip, _ in addresses):
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in addresses)
    return "ipv6:" + ",".join(f"[{ip if ip.version == 6 else f'::ffff:{ip}'}]:{port}" for ip, port in addresses)


def channel_target(value: str, resolve: Resolver = resolve_host) -> str:
    """The gRPC target for the setting: a single address as written; a list as one address list.

    When no entry of a list resolves, the first entry is returned as a plain target, so gRPC
    reports the DNS failure (UNAVAILABLE) the same way it does for a single address."""
    entries = parse_addresses(value)
    if len(entries) == 1:
        return entries[0]
    addresses = resolved([parse_endpoint(entry) for entry in entries], resolve)
    return target_for(addresses) if addresses else entries[0]


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False
