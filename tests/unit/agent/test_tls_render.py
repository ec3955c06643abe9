"""The HTTPS part of the rendered front door, and the TLS file helpers (pure, no HAProxy)."""

from __future__ import annotations

import pytest

from agent.haproxy_config import TlsFrontend, render_config
from agent.tls_files import TlsFiles, bundle_pem, check_pair, new_key_pem, self_signed_pem


def _render(tmp_path, tls):
    return render_config(front_host="127.0.0.1", front_port=8000, run_dir=tmp_path, generation=1,
                         routes={}, tls=tls).config


def test_https_bind_and_rules_only_with_tls(tmp_path):
    files = TlsFiles(tmp_path)
    config = _render(tmp_path, TlsFrontend("127.0.0.1", 8443, files))
    assert (f"bind 127.0.0.1:8443 ssl crt {files.default_cert} crt-list {files.crt_list} "
            "alpn h2,http/1.1") in config
    # The challenge is answered before any redirect: a redirecting host still gets its first cert.
    assert config.index("acme-challenge") < config.index("http-request redirect")
    assert "Strict-Transport-Security" in config
    plain = _render(tmp_path, None)
    assert " ssl " not in plain and "acme" not in plain and "redirect" not in plain


def test_bundle_has_no_blank_line_for_the_runtime_api():
    pem = self_signed_pem("a.example.com")
    cert, key = pem.split(b"-----BEGIN PRIVATE KEY-----")
    bundle = bundle_pem(cert + b"\n\n", b"\n-----BEGIN PRIVATE KEY-----" + key + b"\n\n")
    assert b"\n\n" not in bundle and bundle.endswith(b"\n")


def test_uploaded_pairs_are_checked_without_echoing_the_key():
    pem = self_signed_pem("a.example.com")
    cert = pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")]
    key = pem[len(cert):]
    assert check_pair(cert, key, "a.example.com").names == ("a.example.com",)
    other = new_key_pem()
    for bad_cert, bad_key, domain, said in [(cert, other, "a.example.com", "does not belong"),
                                            (cert, key, "b.example.com", "not b.example.com"),
                                            (b"nope", key, "a.example.com", "not a PEM"),
                                            (cert, b"nope", "a.example.com", "not an unencrypted")]:
        with pytest.raises(ValueError) as err:
            check_pair(bad_cert, bad_key, domain)
        assert said in str(err.value) and "PRIVATE" not in str(err.value)


def test_files_are_private(tmp_path):
    files = TlsFiles(tmp_path)
    files.ensure()
    assert oct(files.dir.stat().st_mode & 0o777) == "0o700"
    assert oct(files.default_cert.stat().st_mode & 0o777) == "0o600"
    path = files.write_cert("a.example.com", self_signed_pem("a.example.com"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert files.list_cert(path) and not files.list_cert(path)
    assert files.in_service() == {"a.example.com"}
    assert files.unlist_cert(path) and files.in_service() == set()
