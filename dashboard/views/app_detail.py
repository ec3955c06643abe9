"""App page: deploy, rebuild, roll back one app, and read what runs: containers, history, timings, logs.

The app comes from `?app=<name>` (links from the Apps page) or the selector, which keeps the query
parameter in step so the URL can be shared. Every deploy button queues a deployment and moves to the
Deployment page, where it is followed live.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from serversinc.v1 import app_pb2, deployment_pb2

from dashboard import ui
from client.errors import ApiError
from client.placement import replicas_words, servers_of
from dashboard.api import banner, get_client

DEPLOYMENT_PAGE = "views/deployment.py"
APPS_PAGE = "views/apps.py"
HISTORY = 20

client = get_client()
apps = client.list_apps()
st.title("App")
if not apps:
    st.info("No apps yet.", icon=":material/info:")
    st.page_link(APPS_PAGE, label="Create one on the Apps page", icon=":material/add:")
    st.stop()

names = [a.name for a in apps]
wanted = st.query_params.get("app")
pick = st.columns([1, 2])[0].selectbox("App", names, index=names.index(wanted) if wanted in names else 0)
st.query_params["app"] = pick
app = client.get_app(pick)
deployments = client.list_deployments(pick, page_size=HISTORY)


def deploy(rebuild: bool = False, source: str = "") -> None:
    """Queue a deployment, then follow it on the Deployment page."""
    try:
        dep = client.create_deployment(pick, rebuild=rebuild, source_deployment=source)
    except ApiError as err:
        banner(err)
        return
    st.switch_page(DEPLOYMENT_PAGE, query_params={"deployment": ui.deployment_id(dep.name)})


# Header: name, status, what serves, and the actions ------------------------------------------------
head, actions = st.columns([3, 2], vertical_alignment="bottom")
with head:
    st.markdown(f"## {app.name} {ui.badge_md(ui.app_status(app))}")
    serving = (f"`{ui.short_sha(app.current_commit)}` {app.current_commit_message}" if app.current_commit
               else "nothing deployed yet")
    st.markdown(f"Serving {serving}")
    if flag := ui.failed_beside(app):
        st.markdown(f":red-badge[:material/error: {flag}]")
    if note := ui.health_note(app):
        st.caption(f":material/monitor_heart: {note}")
    servers = servers_of(app) or ["local"]
    line = (f":material/call_split: `{app.branch}` of `{app.repo_url}` · "
            f"server{'s' if len(servers) > 1 else ''} {', '.join(f'`{n}`' for n in servers)}"
            f" · replicas {replicas_words(app)}")
    if app.url:
        line = f":material/link: [{app.url}]({app.url}) · " + line
    st.caption(line)
with actions:
    a1, a2 = st.columns(2)
    if a1.button("Deploy", type="primary", icon=":material/rocket_launch:", key="deploy",
                 width="stretch", help="Deploy the branch head (no build if its image exists)."):
        deploy()
    if a2.button("Rebuild & Deploy", icon=":material/construction:", key="rebuild",
                 width="stretch", help="Fetch and build the commit again, then deploy it."):
        deploy(rebuild=True)

m = st.columns(4)
m[0].metric("Status", ui.app_status(app), border=True)
m[1].metric("Last deploy", ui.ago(app.last_deploy_time), border=True)
m[2].metric("Deployments", len(deployments) if len(deployments) < HISTORY else f"{HISTORY}+", border=True)
last_ok = next((d for d in deployments if d.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED), None)
m[3].metric("Last build", ui.seconds(last_ok.build_seconds) if last_ok and not last_ok.build_skipped
            else ("cached" if last_ok else "—"), border=True)

# HTTPS: each domain's certificate as the app's server reports it (no key material) -----------------
if app.certificates or app.https_redirect or app.hsts_max_age_seconds:
    failing = [c for c in app.certificates if c.last_error]
    with st.expander(":material/lock: HTTPS" + (f" · {len(failing)} failing" if failing else ""),
                     expanded=bool(failing)):
        settings = [f"HTTP → HTTPS redirect {'on' if app.https_redirect else 'off'}",
                    f"HSTS max-age {app.hsts_max_age_seconds}s" if app.hsts_max_age_seconds else "no HSTS"]
        st.caption(" · ".join(settings) + " (a domain is redirected once its certificate serves)")
        if not app.certificates:
            st.caption("No certificate reported yet.")
        else:
            st.dataframe(pd.DataFrame([{
                "domain": c.domain,
                "state": app_pb2.CertificateState.Name(c.state).removeprefix("CERTIFICATE_STATE_").lower(),
                "issuer": c.issuer,
                "expires": ui.to_datetime(c.not_after) if c.HasField("not_after") else None,
                "next attempt": ui.to_datetime(c.next_attempt_time) if c.HasField("next_attempt_time") else None,
                "last error": c.last_error,
            } for c in app.certificates]), hide_index=True, width="stretch", key="certificates_table")

# Rollback: any earlier successful release other than the one serving ------------------------------
rollback = [d for d in deployments if d.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED
            and d.name != app.current_deployment]
with st.expander(":material/history: Roll back", expanded=False):
    if not rollback:
        st.caption("No earlier successful deployment to roll back to.")
    else:
        labels = {d.name: f"#{d.id} · {ui.short_sha(d.commit_sha)} {d.commit_message} · {ui.ago(d.end_time)}"
                  for d in rollback}
        r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
        source = r1.selectbox("Release to run again (no build)", list(labels), format_func=labels.get,
                              key="rollback_pick")
        if r2.button("Roll back", icon=":material/undo:", key="rollback", width="stretch"):
            deploy(source=source)

tab_deps, tab_containers, tab_logs = st.tabs([":material/list: Deployments", ":material/deployed_code: Containers",
                                               ":material/terminal: Logs"])

with tab_deps:
    if not deployments:
        st.caption("No deployments yet: press Deploy.")
    else:
        rows = pd.DataFrame([{
            "id": d.id,
            "state": ui.deployment_state(d),
            "trigger": ui.enum_value_short(deployment_pb2.DeploymentTrigger, d.trigger),
            "commit": ui.short_sha(d.commit_sha),
            "message": d.commit_message,
            "build s": None if d.build_skipped else round(d.build_seconds, 2),
            "deploy s": round(d.deploy_seconds, 2) or None,
            "created": ui.to_datetime(d.create_time),
            "failure": d.failure_reason,
        } for d in deployments])
        table, chart = st.columns([3, 2])
        with table:
            styled = rows.style.map(lambda w: ui.cell_style(w, deployment=True), subset=["state"])
            picked = st.dataframe(
                styled, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                key="deployments_table",
                column_config={
                    "id": st.column_config.NumberColumn("#", format="%d", width="small"),
                    "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss"),
                    "build s": st.column_config.NumberColumn(format="%.2f"),
                    "deploy s": st.column_config.NumberColumn(format="%.2f"),
                })
            st.caption("Select a row to open that deployment.")
            selected = picked.selection.rows if picked and hasattr(picked, "selection") else []
            if selected:
                st.switch_page(DEPLOYMENT_PAGE, query_params={"deployment": str(int(rows.iloc[selected[0]]["id"]))})
        with chart:
            timed = [d for d in reversed(deployments) if d.state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED]
            if timed:
                st.markdown("**Build and deploy time, last successful deployments**")
                data = pd.DataFrame({
                    "deployment": [f"#{d.id}" for d in timed],
                    "build": [d.build_seconds for d in timed],
                    "deploy": [d.deploy_seconds for d in timed],
                }).set_index("deployment")
                st.bar_chart(data, y_label="seconds", stack=False, height=300, color=["#2f6fed", "#21a366"])
            else:
                st.caption("Timings appear after a successful deployment.")

with tab_containers:
    try:
        containers, unreachable = client.list_containers(pick)
    except ApiError as err:
        banner(err)
        containers, unreachable = [], []
    for why in unreachable:
        st.warning(f"Not listed: server {why}", icon=":material/cloud_off:")
    if not containers:
        st.caption("No containers on the server for this app.")
    else:
        table = pd.DataFrame([{
            "server": c.server,
            "name": c.name,
            "state": c.state or "unknown",
            # An old release after a switch keeps its WebSockets and event streams until they
            # close or the drain deadline: how many it still holds.
            "draining": f"{c.open_connections} connection(s) open" if c.draining else "",
            "deployment": f"#{ui.deployment_id(c.deployment)}" if c.deployment else "",
            "commit": ui.short_sha(c.commit_sha),
            "image": c.image,
            "direct url": c.direct_url,
            "created": ui.to_datetime(c.create_time),
            "id": c.id[:12],
        } for c in containers])
        st.dataframe(table.style.map(lambda w: ui.cell_style("running" if w == "running" else "stopped"),
                                     subset=["state"]), hide_index=True, width="stretch",
            column_config={"direct url": st.column_config.LinkColumn(),
                           "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})

with tab_logs:
    l1, l2, l3 = st.columns([2, 1, 2], vertical_alignment="bottom")
    # The serving container, or any deployment that ran: a replaced or crashed release's output
    # is kept by its server (the last releases of each app).
    releases = {"": "serving now"} | {d.name: f"#{d.id} · {ui.short_sha(d.commit_sha)} · "
                                              f"{ui.deployment_state(d)} · {ui.ago(d.create_time)}"
                                      for d in deployments if d.name != app.current_deployment}
    release = l1.selectbox("Release", list(releases), format_func=releases.get, key="log_release")
    tail = l2.number_input("Lines", 10, 2000, 200, step=50, key="log_tail")
    l3.button("Refresh", icon=":material/refresh:", key="log_refresh")  # any click reruns, re-reading the tail
    try:
        lines = client.app_logs(pick, tail=int(tail), deployment=release)
    except ApiError as err:
        st.info(f"No logs: {err.details}", icon=":material/info:")
    else:
        if lines:
            st.code("\n".join(f"{ui.local_time(line.time)}  {line.text}" for line in lines), language=None,
                    height=360)
        else:
            st.caption("The container has not written anything yet.")
