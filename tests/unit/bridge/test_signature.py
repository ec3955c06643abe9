"""GitHub's X-Hub-Signature-256: HMAC-SHA256 over the raw body, compared in constant time."""

from bridge import signature


def test_signature_matches_githubs_documented_example():
    # From GitHub's "Validating webhook deliveries" documentation.
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature.sign(secret, body) == expected
    assert signature.verify(secret, body, expected)
    assert not signature.verify(secret, body + b" ", expected)
    assert not signature.verify(secret, body, expected.upper().replace("SHA256", "sha256")[:-1] + "0")
    assert not signature.verify(secret, body, None) and not signature.verify(secret, body, "")
    assert not signature.verify("", body, signature.sign("", body))  # no secret, no trust
    assert not signature.verify(secret, body, "sha256=\u00e9")
