"""Prune and ListImages: requests checked and turned into agent.pruner calls, results into protobuf.

TugboatServicer's methods of the same names are one-line calls into here.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tugboat.v1 import tugboat_pb2 as pb

from agent import pruner as P
from agent.docker_engine import EngineError
from common import rules

log = logging.getLogger(__name__)

_KINDS = {P.IMAGE: pb.PRUNE_ITEM_KIND_IMAGE, P.CONTAINER: pb.PRUNE_ITEM_KIND_CONTAINER,
          P.BUILD_CACHE: pb.PRUNE_ITEM_KIND_BUILD_CACHE,
          P.REPOSITORY_CACHE: pb.PRUNE_ITEM_KIND_REPOSITORY_CACHE}


def _app(request, context, *, required: bool) -> str:
    if not request.app and not required:
        return ""
    try:
        return rules.app_name(request.app)
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def report_message(report: P.Report) -> pb.PruneResponse:
    return pb.PruneResponse(
        items=[pb.PrunedItem(kind=_KINDS[i.kind], app=i.app, id=i.id, name=i.name,
                             deployment_id=i.deployment_id, size_bytes=i.size_bytes, reason=i.reason)
               for i in report.items],
        bytes_freed=report.bytes_freed, dry_run=report.dry_run,
        skipped=[pb.PruneSkip(app=app, reason=reason) for app, reason in report.skipped])


def prune(pruner: P.Pruner, request, context) -> pb.PruneResponse:
    app = _app(request, context, required=False)
    try:
        return report_message(pruner.prune(app, dry_run=request.dry_run))
    except EngineError as exc:
        log.exception("prune failed")
        context.abort(grpc.StatusCode.INTERNAL, f"prune failed: {exc}")


def list_images(pruner: P.Pruner, request, context) -> pb.ListImagesResponse:
    app = _app(request, context, required=True)
    try:
        views, retain = pruner.list_images(app)
    except EngineError as exc:
        log.exception("listing images failed")
        context.abort(grpc.StatusCode.INTERNAL, f"listing images failed: {exc}")
    out = pb.ListImagesResponse(retain_releases=retain)
    for view in views:
        created = Timestamp()
        created.FromSeconds(int(view.image.created))
        out.images.append(pb.AppImage(id=view.image.id, tags=view.image.tags,
                                      commit_sha=view.image.commit_sha,
                                      size_bytes=view.image.size_bytes, create_time=created,
                                      retained=view.retained, deployment_ids=view.deployment_ids))
    return out
