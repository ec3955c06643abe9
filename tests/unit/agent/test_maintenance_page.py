"""The maintenance page and its map entry: the user's message is HTML-escaped, and the map value
carries nothing HAProxy's runtime API or map syntax could read as a separator."""

from __future__ import annotations

import base64
from pathlib import Path

from agent.haproxy_config import maintenance_page, maintenance_value, render_config
from agent.route_policy import Route, Server


def test_the_message_is_escaped_and_the_value_is_plain_base64():
    message = 'down; back <b>soon</b> & "fine"'
    page = maintenance_page("web", message)
    assert "down; back &lt;b&gt;soon&lt;/b&gt; &amp; &quot;fine&quot;" in page and "<b>" not in page
    value = maintenance_value("web", message)
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert base64.b64decode(value).decode() == page
    assert "web is down for maintenance." in maintenance_page("web")


def test_rendered_backends_carry_the_switch_and_the_map_only_apps_in_maintenance():
    routes = {"web": Route(servers=(Server("blue", "c1", 40001),), maintenance=True,
                           maintenance_message="soon"),
              "api": Route(servers=(Server("blue", "c2", 40002),))}
    rendered = render_config(front_host="127.0.0.1", front_port=8000, run_dir=Path("/run/x"),
                             generation=1, routes=routes)
    for app in ("web", "api"):
        backend = rendered.config.split(f"backend app_{app}\n", 1)[1].split("\n\n", 1)[0]
        assert f"str(app_{app}),map(/run/x/maintenance.map)" in backend
        assert "http-request return status 503" in backend
    assert rendered.maintenance_map == f"app_web {maintenance_value('web', 'soon')}\n"
    assert "timeout tunnel" in rendered.config


def test_a_route_in_maintenance_round_trips_and_others_keep_their_format():
    route = Route(maintenance=True, maintenance_message="soon")
    assert Route.from_json(route.to_json()) == route
    assert "maintenance" not in Route().to_json()
