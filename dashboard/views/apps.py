"""Apps page: every app at a glance (status, serving commit, URL, last deploy), and create / edit / delete.

Thin on purpose: calls go through dashboard.api, field handling through dashboard.forms. The API
is the only validator: its message for a bad field is shown inline under the form that sent it.
"""

from __future__ import annotations

import streamlit as st

from dashboard import forms, ui
from client.errors import ApiError
from dashboard.api import banner, get_client

APP_PAGE = "views/app_detail.py"
CARDS_PER_ROW = 3

client = get_client()
apps = client.list_apps()
by_name = {a.name: a for a in apps}

st.title("Apps")
if flash := st.session_state.pop("apps_flash", None):
    st.success(flash, icon=":material/check_circle:")

counts = {word: sum(1 for a in apps if ui.app_status(a) == word)
          for word in ("running", "degraded", "down", "deploying", "failed")}
m = st.columns(5)
m[0].metric("Apps", len(apps), border=True)
m[1].metric("Running", counts["running"], border=True)
m[2].metric("Degraded or down", counts["degraded"] + counts["down"], border=True)
m[3].metric("Deploying", counts["deploying"], border=True)
m[4].metric("Failed", counts["failed"], border=True)


def app_card(app) -> None:
    status = ui.app_status(app)
    with st.container(border=True):
        head, right = st.columns([3, 1], vertical_alignment="center")
        head.markdown(f"### {app.name}")
        with right:
            ui.badge(status)
        if app.current_commit:
            st.markdown(f"`{ui.short_sha(app.current_commit)}` {app.current_commit_message}")
            if flag := ui.failed_beside(app):
                st.markdown(f":red-badge[:material/error: {flag}]")
            if note := ui.health_note(app):
                st.caption(f":material/monitor_heart: {note}")
        else:
            st.markdown('<span class="sx-muted">No release serving yet</span>', unsafe_allow_html=True)
        if app.url:
            st.markdown(f":material/link: [{app.url}]({app.url})")
        else:
            st.markdown('<span class="sx-muted">No URL until the first successful deploy</span>',
                        unsafe_allow_html=True)
        when = ui.ago(app.last_deploy_time)
        st.caption(f":material/call_split: {app.branch} · last deploy {when}")
        st.page_link(APP_PAGE, label="Open", icon=":material/arrow_forward:", query_params={"app": app.name})


if not apps:
    st.info("No apps yet. Create one below: a git repository and a branch is all it takes.",
            icon=":material/info:")
for start in range(0, len(apps), CARDS_PER_ROW):
    row = st.columns(CARDS_PER_ROW)
    for col, app in zip(row, apps[start:start + CARDS_PER_ROW]):
        with col:
            app_card(app)

st.divider()
create_tab, edit_tab, delete_tab = st.tabs([":material/add: Create app", ":material/edit: Edit app",
                                            ":material/delete: Delete app"])


def app_fields(prefix: str, app=None) -> dict:
    """The settable fields as widgets (keys `<prefix>_<field>`), prefilled from `app` when editing."""
    def val(field, default):
        return getattr(app, field) if app is not None else default

    values = {}
    c1, c2 = st.columns([2, 1])
    values["repo_url"] = c1.text_input("Repository URL", val("repo_url", ""), key=f"{prefix}_repo_url",
                                       placeholder="https://github.com/you/app.git")
    values["branch"] = c2.text_input("Branch", val("branch", "main"), key=f"{prefix}_branch")
    c1, c2, c3 = st.columns(3)
    values["port"] = c1.number_input("Container port", 0, 65535, val("port", 8080), key=f"{prefix}_port")
    values["health_path"] = c2.text_input("Health check path", val("health_path", "/"), key=f"{prefix}_health_path")
    values["server"] = c3.text_input("Server", val("server", ""), key=f"{prefix}_server",
                                     placeholder="local", help="Empty: the default server.")
    with st.expander("Build, environment and timeouts"):
        c1, c2 = st.columns(2)
        values["dockerfile"] = c1.text_input("Dockerfile", val("dockerfile", "Dockerfile"), key=f"{prefix}_dockerfile")
        values["context_dir"] = c2.text_input("Build context", val("context_dir", "."), key=f"{prefix}_context_dir")
        values["env"] = st.text_area("Environment (KEY=VALUE per line)", forms.format_env(val("env", {})),
                                     key=f"{prefix}_env", height=100)
        c1, c2, c3 = st.columns(3)
        values["health_timeout_seconds"] = c1.number_input(
            "Health timeout (s)", 0, 3600, val("health_timeout_seconds", 0), key=f"{prefix}_health_timeout_seconds",
            help="0: the server's default.")
        values["build_timeout_seconds"] = c2.number_input(
            "Build timeout (s)", 0, 6 * 3600, val("build_timeout_seconds", 0), key=f"{prefix}_build_timeout_seconds",
            help="0: the server's default.")
        values["stop_grace_seconds"] = c3.number_input(
            "Stop grace (s)", 0, 3600, val("stop_grace_seconds", 0), key=f"{prefix}_stop_grace_seconds",
            help="0: the server's default.")
    return values


def report(err: Exception) -> None:
    """Inline under the form: the API's own message (a down control plane still gets the banner)."""
    if isinstance(err, ApiError) and err.unreachable:
        banner(err)
    else:
        st.error(err.details if isinstance(err, ApiError) else str(err), icon=":material/error:")


with create_tab:
    with st.form("create_app"):
        name = st.text_input("Name", key="create_name", placeholder="my-app",
                             help="Lowercase letters, digits and '-'; also the app's host name.")
        values = app_fields("create")
        submitted = st.form_submit_button("Create app", type="primary", icon=":material/add:", key="create_submit")
        if submitted:
            try:
                created = client.create_app(forms.app_from_values(name, values))
            except (ApiError, forms.FormError) as err:
                report(err)
            else:
                st.session_state["apps_flash"] = f"Created app {created.name}. Open it to deploy."
                st.rerun()

with edit_tab:
    if not apps:
        st.caption("Nothing to edit yet.")
    else:
        pick = st.selectbox("App", list(by_name), key="edit_pick")
        current = by_name[pick]
        with st.form(f"edit_{pick}"):
            values = app_fields(f"edit_{pick}", current)
            if st.form_submit_button("Save changes", type="primary", icon=":material/save:", key="edit_submit"):
                try:
                    edited = forms.app_from_values(pick, values)
                    paths = forms.changed_fields(current, edited)
                    if not paths:
                        st.info("Nothing changed.", icon=":material/info:")
                    else:
                        client.update_app(edited, paths)
                        st.session_state["apps_flash"] = (f"Updated {pick}: {', '.join(paths)}. "
                                                          "Takes effect on the next deploy.")
                        st.rerun()
                except (ApiError, forms.FormError) as err:
                    report(err)


def _delete(name: str) -> None:
    # A callback, so that the confirmation box can be cleared before the page draws again.
    try:
        get_client().delete_app(name)
    except ApiError as err:
        st.session_state["delete_error"] = err
    else:
        st.session_state["apps_flash"] = f"Deleted app {name}, its containers and its queued deployments."
        st.session_state["delete_confirm"] = ""

with delete_tab:
    if not apps:
        st.caption("Nothing to delete.")
    else:
        pick = st.selectbox("App", list(by_name), key="delete_pick")
        st.warning(f"Deleting **{pick}** stops and removes its containers and cancels its queued deployments.",
                   icon=":material/warning:")
        typed = st.text_input(f"Type **{pick}** to confirm", key="delete_confirm")
        st.button("Delete app", type="primary", icon=":material/delete:", key="delete_submit",
                  disabled=typed.strip() != pick, on_click=_delete, args=(pick,))
        if err := st.session_state.pop("delete_error", None):
            report(err)
