"""The short words both the CLI and the dashboard show for API values."""

from serversinc.v1 import app_pb2, deployment_pb2

from client.names import deployment_id, enum_short, enum_value_short, short_enum, short_sha


def test_short_forms():
    assert short_enum("APP_STATUS_RUNNING") == "running"
    assert short_enum("DEPLOYMENT_PHASE_STOP_OLD") == "stop-old"
    assert short_enum("DEPLOYMENT_STATE_UNSPECIFIED") == ""
    assert enum_short(app_pb2.App(status=app_pb2.APP_STATUS_DEPLOYING), "status") == "deploying"
    assert enum_value_short(deployment_pb2.DeploymentPhase, deployment_pb2.DEPLOYMENT_PHASE_STOP_OLD) == "stop-old"
    assert enum_value_short(deployment_pb2.DeploymentPhase, 999) == "999"
    assert short_sha("0123456789abcdef") == "0123456" and short_sha("") == ""


def test_deployment_id_is_the_last_segment_of_the_name():
    assert deployment_id("deployments/9") == "9"
    assert deployment_id("apps/web/deployments/12") == "12"
    assert deployment_id("") == ""


def test_an_offline_server_says_when_it_was_last_seen():
    from datetime import datetime, timedelta, timezone

    from serversinc.v1 import server_service_pb2 as spb

    from client.names import server_state_words

    now = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)
    gone = spb.Server(state=spb.SERVER_STATE_OFFLINE)
    assert server_state_words(gone, now) == "offline, never seen"
    gone.last_seen_time.FromDatetime(now - timedelta(minutes=3, seconds=20))
    assert server_state_words(gone, now) == "offline, last seen 3 min ago"
    gone.last_seen_time.FromDatetime(now - timedelta(seconds=20))
    assert server_state_words(gone, now) == "offline, last seen just now"
    up = spb.Server(state=spb.SERVER_STATE_ONLINE)
    up.last_seen_time.FromDatetime(now)
    assert server_state_words(up, now) == "online"
