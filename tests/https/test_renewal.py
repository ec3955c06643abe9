"""A short-lived certificate is renewed at 2/3 of its lifetime under keep-alive HTTPS load:
no request fails and the new certificate is what a new handshake gets."""

from __future__ import annotations

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from tests.https.conftest import HttpsKeepAliveClient, served_cert
from tests.support.agent_calls import wait_until

DOMAIN = "renew.example.com"
VALIDITY = 12  # seconds: renewed after 8


@pytest.fixture
def pebble_validity():
    return VALIDITY


def test_renewal_under_https_load_fails_no_request(https_stack, sample):
    sample.deploy([DOMAIN])
    first = https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    lifetime = first.not_after.seconds - first.not_before.seconds
    # Renewal is planned at two thirds of the lifetime (the backoff never moves it earlier).
    assert abs(first.next_attempt_time.seconds - (first.not_before.seconds + lifetime * 2 / 3)) <= 1
    root = https_stack.pebble.root_pem()
    clients = [HttpsKeepAliveClient(https_stack.https_port, DOMAIN, root, max_seconds=60)
               for _ in range(4)]
    for client in clients:
        client.start()
    try:
        assert wait_until(lambda: (c := https_stack.certificate(DOMAIN)).renewals >= 1
                          and c.serial != first.serial, timeout=VALIDITY * 3, interval=0.1)
        renewed = https_stack.certificate(DOMAIN)
        assert served_cert(https_stack.https_port, DOMAIN, root).serial == renewed.serial
        served_before = [len(c.samples) for c in clients]
        # Traffic goes on after the renewal too, on the same connections.
        assert wait_until(lambda: all(len(c.samples) > n + 5
                                      for c, n in zip(clients, served_before)), timeout=10)
    finally:
        samples = [s for c in clients for s in c.stop()]
    assert samples and not [s for s in samples if s.status != 200], \
        [s for s in samples if s.status != 200][:3]
    assert renewed.state == pb.CERTIFICATE_STATE_ISSUED and not renewed.last_error
