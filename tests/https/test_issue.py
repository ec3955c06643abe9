"""A domain added on deploy gets a certificate from pebble and is served over HTTPS with it."""

from __future__ import annotations

import ssl
import stat

import pytest
from tugboat.v1 import tugboat_pb2 as pb

from agent.tls_files import TlsFiles
from tests.https.conftest import http_get, https_get, served_cert
from tests.support.https_client import https_context, tls_connect

DOMAIN = "shop.example.com"


def test_domain_gets_a_certificate_and_answers_over_https(https_stack, sample):
    sample.deploy([DOMAIN])
    cert = https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    assert "Pebble" in cert.issuer and cert.not_after.seconds > 0 and not cert.last_error
    root = https_stack.pebble.root_pem()
    status, _headers, body = https_get(https_stack.https_port, DOMAIN, root)
    assert status == 200 and "sample app v1" in body
    assert served_cert(https_stack.https_port, DOMAIN, root).serial == cert.serial
    # HTTP/2 by ALPN when the client offers it.
    with tls_connect(https_stack.https_port, DOMAIN, https_context(root, ("h2", "http/1.1"))) as tls:
        assert tls.selected_alpn_protocol() == "h2"
    # Plain HTTP still answers (no redirect was asked for), and so does the app's own host.
    assert http_get(https_stack.http_port, DOMAIN)[0] == 200
    # An unknown name gets the agent's self-signed default, which pebble's root does not trust.
    assert served_cert(https_stack.https_port, "other.example.com").names == ("tugboat-default",)
    with pytest.raises(ssl.SSLCertVerificationError):
        served_cert(https_stack.https_port, "other.example.com", root)


def test_key_files_are_private(https_stack, sample):
    sample.deploy([DOMAIN])
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    tls = TlsFiles(https_stack.agent.config.state_dir)
    files = [tls.cert_path(DOMAIN), tls.default_cert, tls.acme_dir / "account-key.pem"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(tls.dir.stat().st_mode) == 0o700
    # What the agent reports carries no key material.
    listed = https_stack.agent.stub.ListCertificates(pb.ListCertificatesRequest())
    assert b"PRIVATE KEY" not in listed.SerializeToString()


def test_certificates_and_their_state_survive_restarts(https_stack, sample, tmp_path):
    """HAProxy killed (-9, restarted by the front door service) serves the issued certificate
    from the crt-list; an agent started again on the same state knows it and issues nothing."""
    import os
    import signal

    from agent.frontdoor_files import FrontDoorFiles
    from agent.haproxy_process import running_master, worker_pids
    from tests.conftest import start_agent
    from tests.support.agent_calls import wait_until

    sample.deploy([DOMAIN])
    cert = https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    root = https_stack.pebble.root_pem()
    files = FrontDoorFiles.for_state(https_stack.agent.config.state_dir)
    master = running_master(files)
    for pid in [master] + worker_pids(master):
        os.kill(pid, signal.SIGKILL)

    def served_again():
        try:
            return running_master(files) not in (None, master) and \
                served_cert(https_stack.https_port, DOMAIN, root).serial == cert.serial
        except OSError:
            return False
    assert wait_until(served_again, timeout=30, interval=0.1)
    assert https_get(https_stack.https_port, DOMAIN, root)[0] == 200

    # A second agent process on the same state (the first one's router released first).
    https_stack.agent.router.close()
    with start_agent(https_stack.agent.config) as again:
        listed = again.stub.ListCertificates(pb.ListCertificatesRequest()).certificates
        assert [(c.domain, c.serial, c.state) for c in listed] == [(DOMAIN, cert.serial, cert.state)]


def test_a_domain_that_leaves_the_app_leaves_service(https_stack, sample):
    sample.deploy([DOMAIN])
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    tls = TlsFiles(https_stack.agent.config.state_dir)
    path = tls.cert_path(DOMAIN)
    assert path.exists()
    sample.deploy([])
    assert https_stack.certificate(DOMAIN) is None
    assert not path.exists() and path not in tls.listed()  # the key is gone with it
    assert served_cert(https_stack.https_port, DOMAIN).names == ("tugboat-default",)
