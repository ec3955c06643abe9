"""CSR signing and CA fingerprints (common.pki), the agent's pin check (agent.enroll.pinned_ca)
and the control plane's issuer rules (services.servers.issuer): pure logic, no network."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.enroll import EnrollError, pinned_ca
from common import pki
from services.core.errors import InvalidArgument
from services.servers.issuer import AgentIssuer, address_host


def test_fingerprint_is_sha256_of_the_der_and_parses_back_however_written():
    ca = pki.make_ca()
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    fp = pki.fingerprint(ca.cert)
    assert fp == "sha256:" + hashlib.sha256(der).hexdigest()
    assert pki.fingerprint(ca.cert_pem) == fp
    colons = ":".join(fp[7:][i:i + 2] for i in range(0, 64, 2)).upper()
    assert pki.parse_fingerprint("SHA256:" + colons) == fp
    for bad in ("", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "g" * 64):
        with pytest.raises(ValueError, match="expected sha256: and 64 hex digits"):
            pki.parse_fingerprint(bad)


def _csr_asking_for(key, name: str) -> bytes:
    """A CSR that asks for a SAN and CA rights: the signer must ignore all of it."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def test_signed_certificate_takes_only_the_key_from_the_csr():
    ca, key = pki.make_ca(), pki.new_key()
    cert = pki.sign_csr(ca, _csr_asking_for(key, "serversinc-api"), common_name="tugboat-agent-b",
                        hosts=["10.1.2.3"])
    assert pki.same_key(cert, key) and pki.issued_by(cert, ca.cert)
    assert not pki.issued_by(cert, pki.make_ca().cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert san.get_values_for_type(x509.DNSName) == []
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == pki.AGENT_DAYS
    assert pki.serial_hex(cert) == format(cert.serial_number, "x")


def test_unusable_csrs_are_refused_with_a_reason():
    ca = pki.make_ca()
    with pytest.raises(pki.CsrError, match="not a PEM CSR"):
        pki.sign_csr(ca, b"hello", common_name="x", hosts=["h"])
    tampered = pki.make_csr(pki.new_key(), "x").replace(b"\n-----END", b"A\n-----END")
    with pytest.raises(pki.CsrError):
        pki.sign_csr(ca, tampered, common_name="x", hosts=["h"])
    with pytest.raises(pki.CsrError, match="no host"):
        pki.sign_csr(ca, pki.make_csr(pki.new_key(), "x"), common_name="x", hosts=[""])


def test_pin_check_names_both_fingerprints_and_spots_a_foreign_ca():
    ca, other = pki.make_ca(), pki.make_ca()
    api = pki.make_leaf(ca, "serversinc-api", hosts=["serversinc-api"]).cert
    assert pinned_ca([api, ca.cert], pki.fingerprint(ca.cert), "h:1") == ca.cert

    with pytest.raises(EnrollError) as wrong:
        pinned_ca([api, ca.cert], pki.fingerprint(other.cert), "h:1")
    assert (f"the API's CA fingerprint is {pki.fingerprint(ca.cert)}, the join command says "
            f"{pki.fingerprint(other.cert)}") in str(wrong.value)
    assert "Nothing was sent" in str(wrong.value)

    with pytest.raises(EnrollError, match="not presented"):
        pinned_ca([api], pki.fingerprint(ca.cert), "h:1")
    # The pinned CA's certificate is public: an impostor can present it beside its own leaf.
    impostor = pki.make_leaf(other, "serversinc-api", hosts=["serversinc-api"]).cert
    with pytest.raises(EnrollError, match="foreign CA"):
        pinned_ca([impostor, ca.cert], pki.fingerprint(ca.cert), "h:1")


def test_issuer_names_the_address_host_and_never_the_api_name(tmp_path):
    pki.write_pair(tmp_path, "ca", pki.make_ca())
    issuer = AgentIssuer(tmp_path)
    key = pki.new_key()
    issued = issuer.sign(pki.make_csr(key, "x").decode(), "b", "[::1]:7700")
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert issued.serial == pki.serial_hex(cert) and issued.not_after == cert.not_valid_after_utc
    assert issued.ca_pem == (tmp_path / "ca.pem").read_text()
    assert issuer.fingerprint() == pki.fingerprint((tmp_path / "ca.pem").read_bytes())
    assert address_host("Agent.Example:7700") == "agent.example"
    with pytest.raises(InvalidArgument, match="cannot name 'serversinc-api'"):
        issuer.sign(pki.make_csr(key, "x").decode(), "b", "serversinc-api:7700")
    with pytest.raises(InvalidArgument) as bad:
        issuer.sign("not a csr", "b", "10.0.0.1:7700")
    assert bad.value.field == "csr_pem" and bad.value.reason == "CSR_INVALID"


def test_an_enrolled_agent_keeps_its_certificates_and_warns_of_another_ca(tmp_path, caplog):
    from agent.config import AgentConfig
    from agent.enroll_start import enroll_if_asked

    certs = tmp_path / "certs"
    certs.mkdir()
    ca = pki.make_ca()
    pki.write_pem(certs / "ca.pem", ca.cert_pem)
    config = AgentConfig(state_dir=tmp_path / "agent", router="direct", certs_dir=certs, join="127.0.0.1:1",
                         join_token="join_x")
    assert enroll_if_asked(config, pki.fingerprint(ca.cert), environ={}) == (config, "")
    assert "another CA" not in caplog.text
    assert enroll_if_asked(config, pki.fingerprint(pki.make_ca().cert), environ={}) == (config, "")
    assert "another CA than the join command's" in caplog.text
    assert "needs --join" in enroll_if_asked(AgentConfig(state_dir=tmp_path / "a2", router="direct"),
                                             pki.fingerprint(ca.cert), environ={})[1]
