"""The API's auth fast path: a token checked moments ago is let in without a lookup; a revoked one never is."""

from __future__ import annotations

from services.security.api_tokens import ApiTokenService


def test_a_token_is_recent_only_after_it_authenticated_and_until_it_is_revoked(db):
    tokens = ApiTokenService(db)
    _, secret = tokens.create("ci")
    assert tokens.recently_authenticated(secret) is None  # never checked: the interceptor asks the database
    assert tokens.authenticate(secret) == "ci"
    assert tokens.recently_authenticated(secret) == "ci"
    assert tokens.recently_authenticated(secret + "x") is None
    assert tokens.recently_authenticated("") is None
    tokens.revoke("ci")
    assert tokens.recently_authenticated(secret) is None
    assert tokens.authenticate(secret) is None
