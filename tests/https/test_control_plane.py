"""HTTPS through the control plane: app settings travel to the agent, the agent's certificate
states are relayed into the App resource, /metrics and the CLI, and no private key ever lands
in the control plane's database or logs."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest
from serversinc.v1 import app_pb2, app_service_pb2, deployment_pb2
from sqlalchemy import inspect, text
from tugboat.v1 import tugboat_pb2 as pb

from services.certificates import relay
from services.health.monitor import HealthMonitor
from services.observability.metrics import Metrics
from tests.https.conftest import http_get
from tests.https.test_upload import own_ca_and_cert
from tests.support.sample_app import make_sample_repo, repo_url

DOMAIN = "cp.example.com"
OWN = "own-cp.example.com"


def relay_round(cp) -> None:
    """One health round with the certificate relay, as the platform runs it."""
    platform = cp.platform
    monitor = HealthMonitor(
        platform.db, lambda server, timeout: platform.agents.for_server(server).list_containers("", timeout=timeout),
        certificates_of=relay.certificates_of(platform.agents))
    try:
        monitor.poll()
    finally:
        monitor.stop()


def test_certificates_reach_the_app_resource_metrics_and_cli(https_stack, control_plane, control_plane_cli,
                                                             dashboard, app_name, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cp = control_plane
    repo = make_sample_repo(tmp_path / "repo", "v1")
    cp.create_app(app_name, repo_url(repo), domains=[DOMAIN, OWN], https_redirect=True, hsts_max_age_seconds=600)
    https_stack.pebble.resolve(OWN, "127.0.0.2")  # ACME cannot get this one: the user's own serves
    dep = cp.wait(cp.deploy(app_name).name, timeout=120)
    assert dep.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED, dep
    https_stack.wait_state(DOMAIN, pb.CERTIFICATE_STATE_ISSUED)
    https_stack.wait_state(OWN, pb.CERTIFICATE_STATE_FAILED)
    # The app's settings reached the front door: redirect once the certificate serves.
    status, headers, _ = http_get(https_stack.http_port, DOMAIN, "/x")
    assert status == 308 and headers["location"] == f"https://{DOMAIN}:{https_stack.https_port}/x"

    relay_round(cp)
    app = cp.apps.GetApp(app_service_pb2.GetAppRequest(name=f"apps/{app_name}"))
    assert app.https_redirect and app.hsts_max_age_seconds == 600
    certs = {c.domain: c for c in app.certificates}
    assert certs[DOMAIN].state == app_pb2.CERTIFICATE_STATE_ISSUED and "Pebble" in certs[DOMAIN].issuer
    assert certs[DOMAIN].HasField("not_after") and certs[DOMAIN].HasField("next_attempt_time")
    assert certs[OWN].state == app_pb2.CERTIFICATE_STATE_FAILED and "challenge failed" in certs[OWN].last_error

    metrics = generate_latest(Metrics(certificates=lambda: relay.metric_rows(cp.platform.db)).registry).decode()
    expiry = f'serversinc_certificate_expiry_timestamp_seconds{{app="{app_name}",domain="{DOMAIN}"}}'
    assert expiry in metrics
    assert f'serversinc_certificate_last_error{{app="{app_name}",domain="{OWN}",state="failed"}} 1.0' in metrics

    # The dashboard's app page shows them, the failing one's reason included.
    at = dashboard(cp.address).run()
    at.switch_page("views/app_detail.py")
    at.query_params.clear()
    at.query_params["app"] = app_name
    at.run()
    assert not at.exception, at.exception
    assert any("HTTPS · 1 failing" in e.label for e in at.expander), [e.label for e in at.expander]
    table = next(d.value for d in at.dataframe if "domain" in d.value.columns)
    rows = {r["domain"]: r for r in table.to_dict("records")}
    assert rows[DOMAIN]["state"] == "issued" and rows[OWN]["state"] == "failed"
    assert "challenge failed" in rows[OWN]["last error"]

    # The user's own certificate, through the CLI: the key goes to the agent only.
    ca, cert, key = own_ca_and_cert(OWN)
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    cli = control_plane_cli(cp.address)
    done = cli("apps", "certs", "upload", app_name, "--domain", OWN, "--cert", str(tmp_path / "cert.pem"),
               "--key", str(tmp_path / "key.pem"))
    assert f"certificate for {OWN} in service" in done.stdout
    shown = cli("apps", "show", app_name).stdout
    assert f"cert {DOMAIN}" in shown and "issued, by CN=Pebble" in shown
    assert f"cert {OWN}" in shown and "uploaded, by CN=users own ca" in shown
    assert "https redirect" in shown and "max-age=600" in shown
    listed = cli.json("apps", "certs", "list", app_name, "--json")
    assert {c["domain"]: c["state"] for c in listed}[OWN] == "CERTIFICATE_STATE_UPLOADED"

    # Nothing private in the control plane: not in any table, not in its log.
    key_line = key.decode().splitlines()[1]
    with cp.platform.db.read() as s:
        for table in inspect(s.get_bind()).get_table_names():
            dump = " ".join(str(row) for row in s.execute(text(f'SELECT * FROM "{table}"')))
            assert "PRIVATE KEY" not in dump and key_line not in dump, table
    assert "PRIVATE KEY" not in caplog.text and key_line not in caplog.text


def test_bad_upload_through_the_api_is_refused(https_stack, control_plane, app_name, tmp_path):
    import grpc

    cp = control_plane
    repo = make_sample_repo(tmp_path / "repo", "v1")
    cp.create_app(app_name, repo_url(repo), domains=[DOMAIN])
    _, cert, key = own_ca_and_cert("elsewhere.example.com")
    for domain in (DOMAIN, "notmine.example.com"):
        with pytest.raises(grpc.RpcError) as err:
            cp.apps.UploadAppCertificate(app_service_pb2.UploadAppCertificateRequest(
                name=f"apps/{app_name}", domain=domain, certificate_pem=cert, private_key_pem=key))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "PRIVATE KEY" not in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        cp.create_app(f"{app_name}x", repo_url(repo), hsts_max_age_seconds=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
