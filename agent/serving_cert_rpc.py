"""PrepareAgentCertificate / InstallAgentCertificate: messages in, agent.serving_cert calls, status codes out."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tugboat.v1 import tugboat_pb2 as pb

from agent.serving_cert import CertificateMismatch, NoPendingKey, ServingCertificate, UntrustedCertificate


def _no_tls(context):
    context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                  "this agent serves plaintext (--insecure): it has no certificate to renew")


def prepare(serving: ServingCertificate | None, request, context) -> pb.AgentCertificateRequest:
    if serving is None:
        _no_tls(context)
    return pb.AgentCertificateRequest(csr_pem=serving.prepare().decode())


def install(serving: ServingCertificate | None, request, context) -> pb.AgentCertificate:
    if serving is None:
        _no_tls(context)
    try:
        installed = serving.install(request.certificate_pem.encode())
    except (NoPendingKey, CertificateMismatch) as exc:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except UntrustedCertificate as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    expire = Timestamp()
    expire.FromDatetime(installed.not_after)
    return pb.AgentCertificate(serial=installed.serial, expire_time=expire)
