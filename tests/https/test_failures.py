"""An ACME failure leaves the domain on HTTP with a clear reason and a later retry, which
succeeds once the challenge can be answered."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from tugboat.v1 import tugboat_pb2 as pb

from tests.https.conftest import http_get, served_cert
from tests.support.agent_calls import wait_until

DOMAIN = "down.example.com"


def test_refused_challenge_keeps_http_and_retries_later(https_stack, sample):
    # The CA's DNS sends it to a loopback address where nothing answers HTTP-01.
    https_stack.pebble.resolve(DOMAIN, "127.0.0.2")
    sample.deploy([DOMAIN], https_redirect=True, hsts_max_age=Duration(seconds=600))
    failed = https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_FAILED)
    assert "challenge failed" in failed.last_error and DOMAIN in failed.last_error, failed.last_error
    assert failed.next_attempt_time.seconds > 0 and not failed.serial
    # Served over plain HTTP, not redirected (no certificate in service), default cert on HTTPS.
    status, headers, body = http_get(https_stack.http_port, DOMAIN)
    assert status == 200 and "sample app v1" in body and "Location" not in headers
    assert served_cert(https_stack.https_port, DOMAIN).names == ("tugboat-default",)
    # Retries back off (the conftest sets a 2 s base): the second failure is scheduled at least
    # 2 x 2 s after it, and it came no earlier than the first one's schedule.
    first = failed.next_attempt_time.ToNanoseconds() / 1e9
    assert wait_until(lambda: https_stack.certificate(DOMAIN).next_attempt_time.ToNanoseconds()
                      / 1e9 != first, timeout=30, interval=0.1)
    second = https_stack.certificate(DOMAIN)
    assert second.state == pb.CERTIFICATE_STATE_FAILED
    assert second.next_attempt_time.ToNanoseconds() / 1e9 - first >= 4
    # Once the name resolves to the front door again, the scheduled retry succeeds.
    https_stack.pebble.unresolve(DOMAIN)
    issued = https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED, timeout=90)
    assert not issued.last_error and issued.serial

