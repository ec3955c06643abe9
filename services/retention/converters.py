"""Retention results as serversinc.v1 messages (the API layer's converter for PruneServer)."""

from __future__ import annotations

from serversinc.v1 import server_service_pb2 as pb

from common.names import deployment_name
from services.retention.views import PruneResult


def prune_to_pb(server: str, result: PruneResult) -> pb.PruneServerResponse:
    return pb.PruneServerResponse(
        server=server, dry_run=result.dry_run, bytes_freed=result.bytes_freed,
        items=[pb.PrunedItem(kind=pb.PruneItemKind.Value(f"PRUNE_ITEM_KIND_{i.kind}"), app=i.app, id=i.id,
                             name=i.name, size_bytes=i.size_bytes, reason=i.reason,
                             deployment=deployment_name(i.app, i.deployment_id) if i.app and i.deployment_id else "")
               for i in result.items],
        skipped=[pb.PruneSkip(app=app, reason=reason) for app, reason in result.skipped])
