"""API authentication: the control plane's policy on the shared bearer interceptor.

Callers send "authorization: Bearer <token>" with a live API token. Health checks and
RegisterServer (which carries its own one-time join token) are the only calls without one;
reflection is behind the token too. A refused call never reaches a servicer.
"""

from __future__ import annotations

from common.grpc_auth import BearerInterceptor
from services.security.api_tokens import ApiTokenService

OPEN_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/serversinc.v1.ServerService/RegisterServer",
})


class TokenAuthInterceptor(BearerInterceptor):
    open_methods = OPEN_METHODS

    def __init__(self, tokens: ApiTokenService):
        self.tokens = tokens

    def refusal(self, credential: str) -> str | None:
        if not credential:
            return "missing API token: send 'authorization: Bearer <token>' (see 'serversinc tokens create')"
        if self.tokens.authenticate(credential) is None:
            return "API token is unknown or revoked"
        return None
