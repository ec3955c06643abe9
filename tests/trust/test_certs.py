"""scripts/certs.py: the files, their modes, SANs and key usages; never overwrites without --force."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from scripts.certs import load_pair

ROOT = Path(__file__).resolve().parents[2]
FILES = ("ca.pem", "ca-key.pem", "agent.pem", "agent-key.pem", "control-plane.pem",
         "control-plane-key.pem", "api.pem", "api-key.pem")


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "certs.py"), *args],
                          capture_output=True, text=True, timeout=60, check=True)


def test_makes_ca_agent_control_plane_and_api_certificates(tmp_path):
    out = tmp_path / "certs"
    _run("--out", str(out), "--agent-host", "10.1.2.3", "--agent-host", "agent.example", "--days", "30",
         "--api-host", "api.example", "--api-host", "10.1.2.4")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name in FILES:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == (0o600 if name.endswith("-key.pem") else 0o644), (name, oct(mode))
    ca, agent, cp, api = (load_pair(out, stem) for stem in ("ca", "agent", "control-plane", "api"))
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (agent, cp, api):
        assert leaf.cert.issuer == ca.cert.subject
        ca.cert.public_key().verify(leaf.cert.signature, leaf.cert.tbs_certificate_bytes,
                                    ec.ECDSA(leaf.cert.signature_hash_algorithm))
        lifetime = leaf.cert.not_valid_after_utc - leaf.cert.not_valid_before_utc
        assert 29 <= lifetime.days <= 30
    san = agent.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "agent.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"),
                                                            ipaddress.ip_address("10.1.2.3")}
    assert _eku(agent) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _eku(cp) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The API's: serverAuth for its own hosts plus the name clients of a replica list check.
    san = api.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"serversinc-api", "localhost", "api.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"),
                                                            ipaddress.ip_address("10.1.2.4")}
    assert _eku(api) == [ExtendedKeyUsageOID.SERVER_AUTH]


def _eku(pair) -> list:
    return list(pair.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_never_overwrites_without_force_and_fills_in_missing_files(tmp_path):
    out = tmp_path / "certs"
    _run("--out", str(out))
    before = {name: (out / name).read_bytes() for name in FILES}
    assert "nothing changed" in _run("--out", str(out)).stdout
    assert {name: (out / name).read_bytes() for name in FILES} == before
    # A deleted leaf pair is re-issued from the same CA; the rest stays.
    (out / "agent.pem").unlink()
    _run("--out", str(out))
    after = {name: (out / name).read_bytes() for name in FILES}
    assert after["agent.pem"] != before["agent.pem"] and after["agent-key.pem"] != before["agent-key.pem"]
    assert all(after[n] == before[n] for n in FILES if not n.startswith("agent"))
    assert load_pair(out, "agent").cert.issuer == load_pair(out, "ca").cert.subject
    # --force replaces everything, the CA included.
    _run("--out", str(out), "--force")
    forced = {name: (out / name).read_bytes() for name in FILES}
    assert all(forced[n] != after[n] for n in FILES)


def test_warns_when_the_agent_certificate_misses_a_requested_host(tmp_path):
    out = tmp_path / "certs"
    _run("--out", str(out), "--agent-host", "10.1.2.3")
    assert "does not cover" not in _run("--out", str(out), "--agent-host", "10.1.2.3").stderr
    done = _run("--out", str(out), "--agent-host", "10.1.2.3", "--agent-host", "agent.example")
    assert "does not cover agent.example" in done.stderr
