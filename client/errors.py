"""A failed control-plane call as a person reads it, and the machine-readable parts a client decides on.

Every client shows the same words for the same failure: the server's message, plus what to do
for the failures a person fixes on their own side (control plane down, token refused, no answer
in time). The AIP-193 `ErrorInfo` the control plane attaches is read here once: its `reason`
(e.g. APP_NOT_FOUND) and its metadata (e.g. the deployment an idempotent retry already created).
"""

from __future__ import annotations

import logging

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from client.addresses import describe
from common.api_tls import CA_ENV
from common.defaults import API_ENV, TOKEN_ENV, TOKEN_FILE

log = logging.getLogger(__name__)

# gRPC's words when the server's certificate does not verify with the client's CA.
_TLS_REFUSED = "CERTIFICATE_VERIFY_FAILED"
_HINTS = {
    grpc.StatusCode.UNAVAILABLE: ("cannot reach the control plane at {address}: is scripts/run.sh running? "
                                  f"(set ${API_ENV}, or the CLI's --api, to use another address)"),
    grpc.StatusCode.UNAUTHENTICATED: (f"the control plane at {{address}} refused the API token: set ${TOKEN_ENV} "
                                      f"or write the token to .serversinc/{TOKEN_FILE}"),
    grpc.StatusCode.DEADLINE_EXCEEDED: "the control plane at {address} did not answer in time",
}


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, or None (no details, or trailers that do not parse)."""
    try:
        status = rpc_status.from_call(err)
    except Exception:  # noqa: BLE001 - malformed trailers: the code and message still say what failed
        log.debug("could not read the status details of %r", err, exc_info=True)
        return None
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            return info
    return None


class ApiError(Exception):
    """A failed call: the raw parts kept for logic (`code`, `reason`), phrased for a person (`message`)."""

    def __init__(self, code: grpc.StatusCode | None, details: str, address: str, reason: str = ""):
        super().__init__(details)
        self.code = code
        self.details = details
        self.address = address
        self.reason = reason

    @classmethod
    def from_rpc(cls, err: grpc.RpcError, address: str) -> "ApiError":
        code = err.code() if hasattr(err, "code") else None
        details = (err.details() if hasattr(err, "details") else None) or (code.name if code else str(err))
        info = error_info(err)
        return cls(code, details, address, info.reason if info else "")

    @property
    def unreachable(self) -> bool:
        """The control plane (every listed replica) could not be reached, or went away mid-call."""
        return self.code == grpc.StatusCode.UNAVAILABLE and not self.reason

    @property
    def hint(self) -> str:
        """What to do about it, for the failures fixed on the caller's side; '' otherwise.

        An UNAVAILABLE that carries a reason was sent by the control plane itself (an agent it
        cannot reach, say): the control plane was reached, so its own message is the whole story."""
        if self.code == grpc.StatusCode.UNAVAILABLE and self.reason:
            return ""
        if self.code == grpc.StatusCode.UNAVAILABLE and _TLS_REFUSED in self.details:
            return (f"the control plane at {describe(self.address)} has a TLS certificate the CA this client "
                    f"trusts did not issue: set ${CA_ENV} to the platform's ca.pem (default "
                    "$SERVERSINC_HOME/certs/ca.pem)")
        hint = _HINTS.get(self.code)
        return hint.format(address=describe(self.address)) if hint else ""

    @property
    def message(self) -> str:
        """One sentence for a banner: the hint first when there is one, then the server's words."""
        if not self.hint:
            return self.details
        return f"{self.hint[0].upper()}{self.hint[1:]} — {self.details}"
