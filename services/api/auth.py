"""API authentication: the control plane's policy on the shared bearer interceptor.

Callers send "authorization: Bearer <token>" with a live API token. Health checks and
RegisterServer (which carries its own one-time join token) are the only calls without one;
reflection is behind the token too. A refused call never reaches a servicer.
"""

from __future__ import annotations

from common.grpc_auth import BearerInterceptor, bearer
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

    async def intercept_service(self, continuation, handler_call_details):
        # A token checked moments ago is let in here, on the loop: the shared path hands every
        # check to the thread pool (a lookup may read the database), a hop that cost each unary
        # call a thread switch there and back, under 20 concurrent calls a visible part of it.
        if handler_call_details.method not in self.open_methods and self.tokens.recently_authenticated(
                bearer(handler_call_details.invocation_metadata)):
            return await continuation(handler_call_details)
        return await super().intercept_service(continuation, handler_call_details)

    def refusal(self, credential: str) -> str | None:
        if not credential:
            return "missing API token: send 'authorization: Bearer <token>' (see 'serversinc tokens create')"
        if self.tokens.authenticate(credential) is None:
            return "API token is unknown or revoked"
        return None
