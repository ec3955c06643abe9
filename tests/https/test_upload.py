"""A user's own certificate instead of ACME: checked, served, and the key stays on the agent."""

from __future__ import annotations

import datetime as dt
import logging

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tugboat.v1 import tugboat_pb2 as pb

from tests.https.conftest import https_get, served_cert

DOMAIN = "own.example.com"


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def own_ca_and_cert(domain: str):
    """A CA of the user's and a certificate for `domain` signed by it: (ca_pem, cert_pem, key_pem)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "users own ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=10))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (ca.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.PEM),
            _pem_key(key))


def test_uploaded_certificate_is_served(https_stack, sample, caplog):
    caplog.set_level(logging.DEBUG)
    https_stack.pebble.resolve(DOMAIN, "127.0.0.2")  # ACME cannot get this one: the user's serves
    sample.deploy([DOMAIN])
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_FAILED)
    ca, cert, key = own_ca_and_cert(DOMAIN)
    uploaded = https_stack.agent.stub.UploadCertificate(pb.UploadCertificateRequest(
        app=sample.app, domain=DOMAIN, certificate_pem=cert, private_key_pem=key))
    assert uploaded.state == pb.CERTIFICATE_STATE_UPLOADED and uploaded.uploaded
    assert not uploaded.last_error and not uploaded.HasField("next_attempt_time")
    assert served_cert(https_stack.https_port, DOMAIN, ca).serial == uploaded.serial
    status, _, body = https_get(https_stack.https_port, DOMAIN, ca)
    assert status == 200 and "sample app v1" in body
    # A redeploy keeps the user's certificate: ACME leaves the domain alone.
    sample.deploy([DOMAIN])
    assert https_stack.certificate(DOMAIN).state == pb.CERTIFICATE_STATE_UPLOADED
    assert "PRIVATE KEY" not in caplog.text and key.decode().splitlines()[1] not in caplog.text


@pytest.mark.parametrize("case", ["wrong key", "other domain", "not pem", "not the app's"])
def test_bad_uploads_are_refused_and_change_nothing(https_stack, sample, case):
    sample.deploy([DOMAIN])
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    before = https_stack.certificate(DOMAIN)
    _, cert, key = own_ca_and_cert(DOMAIN)
    app, domain = sample.app, DOMAIN
    if case == "wrong key":
        key = _pem_key(ec.generate_private_key(ec.SECP256R1()))
    elif case == "other domain":
        _, cert, key = own_ca_and_cert("elsewhere.example.com")
    elif case == "not pem":
        cert = b"hello"
    else:
        domain = "unrouted.example.com"
    with pytest.raises(grpc.RpcError) as err:
        https_stack.agent.stub.UploadCertificate(pb.UploadCertificateRequest(
            app=app, domain=domain, certificate_pem=cert, private_key_pem=key))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "PRIVATE KEY" not in err.value.details()
    assert https_stack.certificate(DOMAIN) == before
    assert served_cert(https_stack.https_port, DOMAIN, https_stack.pebble.root_pem()).serial == before.serial
