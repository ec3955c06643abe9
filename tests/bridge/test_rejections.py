"""Deliveries the bridge must refuse or ignore: the right status, and no deployment created.

All cases run against one real bridge and control plane (starting them is the slow part); each
case uses its own app so "nothing was created" is checked for exactly the app it could reach.
"""

from __future__ import annotations

import http.client
import json

from tests.bridge.conftest import GLOBAL_SECRET
from tests.bridge.github import ZERO, encode, headers, ping_payload, push_payload

SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def _push(repo, **kw):
    return push_payload(repo_url=repo, after=kw.pop("after", SHA), **kw)


def test_ping_and_health(bridge, sample_url, app_name):
    bridge.cp.create_app(app_name, sample_url)
    r = bridge.send(f"/webhooks/github/{app_name}", "ping", ping_payload(), bridge.secret(app_name))
    assert r.status_code == 200 and r.json() == {"ok": True, "zen": "Keep it logically awesome."}
    r = bridge.send("/webhooks/github", "ping", ping_payload(), GLOBAL_SECRET)
    assert r.status_code == 200 and r.json()["ok"] is True
    assert bridge.session.get(bridge.base + "/healthz").status_code == 200
    assert bridge.deployments(app_name) == []


def test_refused_and_ignored_deliveries_create_nothing(bridge, sample_url, make_app_name):
    cp = bridge.cp
    app, other = make_app_name(), make_app_name()
    cp.create_app(app, sample_url)
    cp.create_app(other, sample_url)
    secret, other_secret = bridge.secret(app), bridge.secret(other)
    per_app = f"/webhooks/github/{app}"
    good = _push(sample_url)

    def check(label, response, status, body_has=None):
        assert response.status_code == status, (label, response.status_code, response.text)
        text = response.text
        assert "Traceback" not in text and "File \"" not in text, (label, text)
        if body_has:
            assert body_has in text, (label, text)
        assert bridge.deployments(app) == [] and bridge.deployments(other) == [], label

    body = encode(good)
    # Authentication: nothing is read or recorded from an unverified delivery.
    check("bad signature", bridge.send(per_app, "push", good, None, extra={
        "X-Hub-Signature-256": "sha256=" + "0" * 64}), 401)
    check("tampered body", bridge.session.post(bridge.base + per_app, data=body + b" ",
                                               headers=headers("push", body, secret, "d-tamper")), 401)
    check("missing signature", bridge.send(per_app, "push", good, None), 401)
    check("another app's secret", bridge.send(per_app, "push", good, other_secret), 401)
    check("the global secret on an app URL", bridge.send(per_app, "push", good, GLOBAL_SECRET), 401)
    check("an app's secret on the global URL", bridge.send("/webhooks/github", "push", good, secret), 401)
    check("sha1 signature only", bridge.send(per_app, "push", good, None, extra={
        "X-Hub-Signature": "sha1=" + "0" * 40}), 401)
    check("unknown app", bridge.send("/webhooks/github/no-such-app", "push", good, secret), 404, "not found")
    # Verified, but not for a deploy.
    check("tag push", bridge.send(per_app, "push", _push(sample_url, ref="refs/tags/v1.0"), secret), 202,
          '"ignored":"tag push"')
    check("branch deletion", bridge.send(per_app, "push", _push(sample_url, after=ZERO, before=SHA, deleted=True),
                                         secret), 202, '"ignored":"branch deletion"')
    check("branch deletion, global", bridge.send("/webhooks/github", "push",
                                                 _push(sample_url, after=ZERO, before=SHA, deleted=True),
                                                 GLOBAL_SECRET), 202, "branch deletion")
    check("other branch", bridge.send(per_app, "push", _push(sample_url, ref="refs/heads/dev"), secret), 202,
          "deploys branch 'main', not 'dev'")
    check("other branch, global", bridge.send("/webhooks/github", "push", _push(sample_url, ref="refs/heads/dev"),
                                              GLOBAL_SECRET), 202, "no app deploys branch 'dev'")
    check("other repository", bridge.send(per_app, "push", _push("/srv/git/another"), secret), 202,
          "does not deploy repository")
    check("other repository, global", bridge.send("/webhooks/github", "push", _push("/srv/git/another"),
                                                  GLOBAL_SECRET), 202, "no app deploys repository")
    check("unknown event", bridge.send(per_app, "issues", {"action": "opened", "issue": {"number": 1}}, secret),
          202, "not handled")
    check("malformed JSON, signed", bridge.send(per_app, "push", b'{"ref": "refs/heads/main",', secret), 400,
          "not valid JSON")
    check("JSON that is not an object", bridge.send(per_app, "push", b"[1, 2]", secret), 400)
    check("push without X-GitHub-Delivery", bridge.send(per_app, "push", good, secret, delivery=None), 400,
          "X-GitHub-Delivery")
    check("push without an after commit", bridge.send(per_app, "push", _push(sample_url, after="main"), secret),
          400)
    form = b"payload=" + body
    check("form encoded", bridge.session.post(bridge.base + per_app, data=form, headers={
        **headers("push", form, secret, "d-form"), "Content-Type": "application/x-www-form-urlencoded"}), 415,
        "application/json")
    check("text/plain", bridge.session.post(bridge.base + per_app, data=body, headers={
        **headers("push", body, secret, "d-text"), "Content-Type": "text/plain"}), 415)


def test_a_body_over_25_mib_is_refused_with_413(bridge, sample_url, app_name):
    bridge.cp.create_app(app_name, sample_url)
    secret = bridge.secret(app_name)
    limit = 25 * 1024 * 1024
    # Declared length over the limit: refused from the headers alone, before the body is sent.
    port = int(bridge.base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", f"/webhooks/github/{app_name}")
    for k, v in {**headers("push", b"", secret, "d-big"), "Content-Length": str(limit + 1)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and "25 MB" in json.loads(response.read())["error"]
    conn.close()
    # Streamed (chunked, no length) past the limit: refused after reading at most limit + 1 bytes.
    big = b'{"pad":"' + b"x" * (limit) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", f"/webhooks/github/{app_name}")
    for k, v in {**headers("push", big, secret, "d-big2"), "Transfer-Encoding": "chunked"}.items():
        conn.putheader(k, v)
    conn.endheaders()
    try:
        step = 1024 * 1024
        for i in range(0, len(big), step):
            chunk = big[i:i + step]
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the bridge may stop reading once it has seen too much; its answer is already sent
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert bridge.deployments(app_name) == []
    # Just under the limit is read (and then refused for its signature only).
    r = bridge.send(f"/webhooks/github/{app_name}", "push", b"x" * (limit - 10), None)
    assert r.status_code == 401


def test_an_unreachable_control_plane_answers_503(tmp_path):
    """Nothing listens at the API address: a clear 503 (GitHub lets the user redeliver), no trace."""
    from bridge.main import build
    from bridge.settings import WebhookSettings
    from tests.conftest import free_port
    from tests.bridge.conftest import ThreadedServer
    from tests.bridge.github import Sender

    app, connection = build(WebhookSettings(global_secret=GLOBAL_SECRET, rpc_timeout=2),
                            api=f"127.0.0.1:{free_port()}")
    port = free_port()
    with ThreadedServer(app, port):
        sender = Sender(f"http://127.0.0.1:{port}")
        r = sender.send("/webhooks/github", "push", _push("/srv/git/app"), GLOBAL_SECRET)
        assert r.status_code == 503 and "control plane unreachable" in r.json()["error"], r.text
        r = sender.send("/webhooks/github/some-app", "push", _push("/srv/git/app"), "s")
        assert r.status_code == 503 and "Traceback" not in r.text, r.text
        # Still refused before any control-plane call when unsigned.
        assert sender.send("/webhooks/github", "push", _push("/srv/git/app"), None).status_code == 401
    connection.close()
