"""Per app: HTTP -> HTTPS redirect and HSTS, both only once the host's certificate serves."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from tugboat.v1 import tugboat_pb2 as pb

from tests.https.conftest import http_get, https_get
from tests.support.agent_calls import wait_until

DOMAIN = "secure.example.com"


def test_redirect_and_hsts_once_the_certificate_serves(https_stack, sample):
    sample.deploy([DOMAIN], https_redirect=True, hsts_max_age=Duration(seconds=600))
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    root = https_stack.pebble.root_pem()
    status, headers, _ = http_get(https_stack.http_port, DOMAIN, "/page?x=1")
    assert status == 308
    assert headers["location"] == f"https://{DOMAIN}:{https_stack.https_port}/page?x=1"
    status, headers, body = https_get(https_stack.https_port, DOMAIN, root)
    assert status == 200 and "sample app v1" in body
    assert headers.get("strict-transport-security") == "max-age=600"
    # The app's own name has no certificate: it is neither redirected nor given HSTS.
    status, headers, _ = http_get(https_stack.http_port, f"{sample.app}.localhost")
    assert status == 200 and "location" not in {k.lower() for k in headers}

    # Turned off by the next deploy: no reload needed, the maps change at run time.
    sample.deploy([DOMAIN])
    assert wait_until(lambda: http_get(https_stack.http_port, DOMAIN)[0] == 200, timeout=10)
    _, headers, _ = https_get(https_stack.https_port, DOMAIN, root)
    assert "strict-transport-security" not in {k.lower() for k in headers}


def test_no_https_settings_means_plain_http_stays(https_stack, sample):
    sample.deploy([DOMAIN])
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    status, headers, _ = http_get(https_stack.http_port, DOMAIN)
    assert status == 200
    _, headers, _ = https_get(https_stack.https_port, DOMAIN, https_stack.pebble.root_pem())
    assert "strict-transport-security" not in {k.lower() for k in headers}
