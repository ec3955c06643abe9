"""Config as a release and lasting logs through the control plane and the CLI, on a real agent:
`apps set-env --deploy` serves the new env (secret included) with the serving image and no build
(trigger CONFIG, in the history), a rollback brings the old env back, `logs --deployment` reads
the replaced release's output from the agent's archive, and an app serving nothing is refused."""

from __future__ import annotations

from serversinc.v1 import app_service_pb2, deployment_pb2, deployment_service_pb2

from tests.integration.conftest import fetch
from tests.support.sample_app import commit_files

S = deployment_pb2

# Serves "$GREETING $TOKEN" and says so on stdout.
ENV_APP = """FROM scratch
COPY busybox /bin/busybox
COPY index.html /www/index.html
CMD ["/bin/busybox","sh","-c","echo \\"$GREETING $TOKEN\\" > /www/index.html; echo started with $GREETING; exec /bin/busybox httpd -f -p 8080 -h /www"]
"""


def _history(control_plane, app: str) -> list:
    return list(control_plane.deployments.ListDeployments(
        deployment_service_pb2.ListDeploymentsRequest(parent=f"apps/{app}")).deployments)


def _app(control_plane, app: str):
    return control_plane.apps.GetApp(app_service_pb2.GetAppRequest(name=app))


def test_set_env_deploy_is_a_release_without_a_build_and_rollback_restores_the_env(
        control_plane, sample_repo, sample_url, app_name, control_plane_cli):
    commit_files(sample_repo, {"Dockerfile": ENV_APP}, "serves its env")
    cli = control_plane_cli(control_plane.address, TOKEN="s2-from-the-shell")
    control_plane.create_app(app_name, sample_url, env={"GREETING": "hello"}, secret_env={"TOKEN": "s1"})

    refused = cli("apps", "set-env", app_name, "GREETING=early", "--deploy", check=False)
    assert refused.returncode == 1 and "serves nothing yet" in refused.stderr
    assert dict(_app(control_plane, app_name).env) == {"GREETING": "hello"}  # nothing changed
    assert _history(control_plane, app_name) == []

    first = control_plane.wait(control_plane.deploy(app_name).name)
    assert first.state == S.DEPLOYMENT_STATE_SUCCEEDED, first.failure_reason
    assert fetch(first.url).strip() == "hello s1"

    # a bare --secret K takes its value from the CLI's environment (never on the command line)
    done = cli("apps", "set-env", app_name, "GREETING=bonjour", "--secret", "TOKEN", "--deploy", "--watch")
    assert "succeeded" in done.stdout.lower()
    config = _history(control_plane, app_name)[0]
    assert config.trigger == S.DEPLOYMENT_TRIGGER_CONFIG and config.state == S.DEPLOYMENT_STATE_SUCCEEDED
    assert config.build_skipped and config.image_id == first.image_id and config.commit_sha == first.commit_sha
    assert config.source_deployment == first.name
    assert config.release.env["GREETING"] == "bonjour"
    assert fetch(config.url).strip() == "bonjour s2-from-the-shell"
    listed = cli("deployments", "list", app_name).stdout
    assert "config" in listed.lower()

    # the replaced release's output, from the agent's archive; the serving one's, live
    old = cli("logs", app_name, "--deployment", str(first.id)).stdout
    assert old.splitlines() == ["started with hello"]
    assert cli("logs", app_name, "--tail", "1").stdout.splitlines() == ["started with bonjour"]
    assert cli("logs", app_name, "--deployment", str(first.id), "--since", "1h").stdout == old
    assert cli("logs", app_name, "--deployment", str(first.id), "--since", "2999-01-01T00:00:00Z").stdout == ""
    gone = cli("logs", app_name, "--deployment", "999999", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr

    back = cli("rollback", app_name, "--watch")
    assert "succeeded" in back.stdout.lower()
    rolled = _history(control_plane, app_name)[0]
    assert rolled.trigger == S.DEPLOYMENT_TRIGGER_ROLLBACK and rolled.source_deployment == first.name
    assert fetch(rolled.url).strip() == "hello s1"

    # without --deploy: stored for the next deployment, nothing released
    saved = cli("apps", "set-env", app_name, "EXTRA=1", "--unset", "GREETING")
    assert "next deployment" in saved.stdout
    assert dict(_app(control_plane, app_name).env) == {"EXTRA": "1"}
    assert len(_history(control_plane, app_name)) == 3
    assert fetch(rolled.url).strip() == "hello s1"
