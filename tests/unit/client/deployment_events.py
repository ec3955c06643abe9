"""A scripted deployment's event stream, as WatchDeployment would send it, for the watch tests."""

from serversinc.v1 import deployment_pb2 as d

NAME = "deployments/5"


def ev(seq, kind, phase=d.DEPLOYMENT_PHASE_UNSPECIFIED, message="", state=0, cur=0, total=0):
    return d.DeploymentEvent(deployment=NAME, seq=seq, kind=kind, phase=phase, message=message,
                             state=state, step_current=cur, step_total=total)


def script(final_state=d.DEPLOYMENT_STATE_SUCCEEDED):
    B = d.DEPLOYMENT_PHASE_BUILD
    return [
        ev(1, d.EVENT_KIND_STATE, d.DEPLOYMENT_PHASE_QUEUED, state=d.DEPLOYMENT_STATE_QUEUED),
        ev(2, d.EVENT_KIND_STATE, d.DEPLOYMENT_PHASE_QUEUED, state=d.DEPLOYMENT_STATE_RUNNING),
        ev(3, d.EVENT_KIND_PHASE, d.DEPLOYMENT_PHASE_RESOLVE, "resolving main"),
        ev(4, d.EVENT_KIND_LOG, d.DEPLOYMENT_PHASE_RESOLVE, "main is at abc1234"),
        ev(5, d.EVENT_KIND_PHASE, B, "building"),
        ev(6, d.EVENT_KIND_PROGRESS, B, "FROM python:3.11", cur=1, total=3),
        ev(7, d.EVENT_KIND_LOG, B, "Step 1/3 : FROM python:3.11 [cached]"),
        ev(8, d.EVENT_KIND_PROGRESS, B, "RUN pip install", cur=2, total=3),
        ev(9, d.EVENT_KIND_LOG, B, "Collecting flask"),
        ev(10, d.EVENT_KIND_PROGRESS, B, "CMD", cur=3, total=3),
        ev(11, d.EVENT_KIND_PHASE, d.DEPLOYMENT_PHASE_HEALTH, "waiting for /"),
        ev(12, d.EVENT_KIND_STATE, d.DEPLOYMENT_PHASE_DONE, state=final_state),
    ]
