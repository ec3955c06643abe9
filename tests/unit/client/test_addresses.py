"""The API address setting: one address as written, or a list of replicas as one gRPC address list."""

import ipaddress

import pytest

from client.addresses import (
    AddressError,
    Endpoint,
    channel_target,
    describe,
    parse_addresses,
    parse_endpoint,
    resolved,
    target_for,
)


def ip(text):
    return ipaddress.ip_address(text)


def no_dns(host, port):
    raise AssertionError(f"{host} must not be resolved")


def test_a_single_address_is_passed_to_grpc_as_written():
    for value in ("127.0.0.1:50051", "localhost:50051", "dns:///api.example:443", "unix:/run/api.sock"):
        assert channel_target(value, no_dns) == value
    assert channel_target(" 127.0.0.1:50051 ,", no_dns) == "127.0.0.1:50051"


def test_ip_literals_become_one_address_list_in_order():
    assert channel_target("127.0.0.1:1,127.0.0.2:2", no_dns) == "ipv4:127.0.0.1:1,127.0.0.2:2"
    assert channel_target("[::1]:1, [fd00::2]:2", no_dns) == "ipv6:[::1]:1,[fd00::2]:2"
    # Mixed families: one ipv6 list, IPv4 as mapped addresses (gRPC connects to those over IPv4).
    assert channel_target("10.0.0.1:1,[::1]:2", no_dns) == "ipv6:[::ffff:10.0.0.1]:1,[::1]:2"


def test_host_names_in_a_list_are_resolved_in_order_without_repeats():
    table = {"a.internal": [ip("10.0.0.1"), ip("10.0.0.2")], "b.internal": [ip("10.0.0.2"), ip("10.0.0.3")]}
    target = channel_target("a.internal:7,b.internal:7,10.0.0.9:8", lambda host, port: table[host])
    assert target == "ipv4:10.0.0.1:7,10.0.0.2:7,10.0.0.3:7,10.0.0.9:8"


def test_a_name_that_does_not_resolve_leaves_the_others():
    def resolve(host, port):
        if host == "gone.internal":
            raise OSError("Name or service not known")
        return [ip("10.0.0.5")]

    assert channel_target("gone.internal:1,b.internal:2", resolve) == "ipv4:10.0.0.5:2"
    # None resolves: the first entry goes to gRPC, whose DNS failure is the UNAVAILABLE a single name gives.
    assert channel_target("gone.internal:1,gone.internal:2", resolve) == "gone.internal:1"


def test_resolved_and_target_for_are_plain_functions():
    endpoints = [Endpoint("127.0.0.1", 1), Endpoint("127.0.0.1", 1), Endpoint("::1", 2)]
    assert resolved(endpoints, no_dns) == [(ip("127.0.0.1"), 1), (ip("::1"), 2)]
    assert target_for([(ip("127.0.0.1"), 1)]) == "ipv4:127.0.0.1:1"


@pytest.mark.parametrize("value, words", [
    ("", "no control plane address"),
    (" , ", "no control plane address"),
    ("127.0.0.1:1,127.0.0.1", "is not HOST:PORT"),
    ("127.0.0.1:1,host:0", "is not HOST:PORT"),
    ("127.0.0.1:1,host:70000", "is not HOST:PORT"),
    ("127.0.0.1:1,::1:2", "in brackets"),
    ("127.0.0.1:1,[host]:2", "only an IPv6 address"),
    ("127.0.0.1:1,dns:///h:2", "is not a host name"),
    ("127.0.0.1:1, 127.0.0.1:1", "the same address twice"),
])
def test_a_list_that_cannot_be_read_says_why(value, words):
    with pytest.raises(AddressError, match=words):
        parse_addresses(value)


def test_endpoints_and_descriptions():
    assert parse_endpoint("[::1]:50051") == Endpoint("::1", 50051)
    assert str(Endpoint("::1", 50051)) == "[::1]:50051" and str(Endpoint("h", 1)) == "h:1"
    assert describe("h:1") == "h:1"
    assert describe("h:1,g:2") == "any of h:1, g:2"
