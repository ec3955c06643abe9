"""Deployment page: one deployment followed live — phase stepper, build progress, log, outcome.

The deployment comes from `?deployment=<id>` (set by the App page's buttons) or the selector. While it
runs, a fragment re-runs every half second: it reads the events after the last seq it kept (see
dashboard.live) and redraws only the live part. When the deployment ends, one full rerun draws the
final state and the timer stops.
"""

from __future__ import annotations

import streamlit as st
from serversinc.v1 import deployment_pb2

from dashboard import live, ui
from client.errors import ApiError
from client.placement import outcome_words
from dashboard.api import banner, get_client

APP_PAGE = "views/app_detail.py"
TICK_SECONDS = 0.5
LIVE_TAIL = 40

client = get_client()
st.title("Deployment")

recent = client.list_deployments(page_size=50)
by_id = {ui.deployment_id(d.name): d for d in recent}
wanted = str(st.query_params.get("deployment", "") or "").strip()
if wanted and wanted not in by_id:
    try:
        dep = client.get_deployment(wanted)
        by_id = {ui.deployment_id(dep.name): dep, **by_id}
        wanted = ui.deployment_id(dep.name)
    except ApiError as err:
        if err.unreachable:
            raise
        st.warning(f"Deployment {wanted!r}: {err.details}", icon=":material/warning:")
        wanted = ""
if not by_id:
    st.info("No deployments yet: deploy an app from its page.", icon=":material/info:")
    st.stop()

ids = list(by_id)
pick = st.columns([1, 2])[0].selectbox(
    "Deployment", ids, index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: (f"#{i} · {by_id[i].app} · {ui.deployment_state(by_id[i])} · "
                           f"{ui.local_time(by_id[i].create_time)}"))
st.query_params["deployment"] = pick
name = by_id[pick].name


def header(dep) -> None:
    state = ui.deployment_state(dep)
    st.markdown(f"## #{dep.id} · {dep.app} {ui.badge_md(state, deployment=True)}")
    trigger = ui.enum_value_short(deployment_pb2.DeploymentTrigger, dep.trigger)
    what = f"`{ui.short_sha(dep.commit_sha)}` {dep.commit_message}" if dep.commit_sha else "commit not resolved yet"
    extra = " · rebuild" if dep.rebuild else ""
    if dep.source_deployment:
        extra += f" · rollback to #{ui.deployment_id(dep.source_deployment)}"
    st.caption(f"{what} · triggered by {trigger}{extra} · created {ui.local_time(dep.create_time)}")
    st.page_link(APP_PAGE, label=f"Back to {dep.app}", icon=":material/arrow_back:", query_params={"app": dep.app})


def outcome(dep) -> None:
    """Final status, durations and, for a failure, where and why — or where it stands while it runs."""
    state = dep.state
    if state == deployment_pb2.DEPLOYMENT_STATE_SUCCEEDED:
        where = f" — serving at [{dep.url}]({dep.url})" if dep.url else ""
        st.success(f"**Deployment succeeded** (SUCCEEDED){where}", icon=":material/check_circle:")
    elif state in (deployment_pb2.DEPLOYMENT_STATE_FAILED, deployment_pb2.DEPLOYMENT_STATE_CANCELLED):
        word = ui.deployment_state(dep).upper()
        st.error(f"**{word} in phase {ui.phase_word(dep.failure_phase or dep.phase)}**: "
                 f"{dep.failure_reason or 'no reason recorded'}. The previous release keeps serving.",
                 icon=":material/error:")
    elif state == deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED:
        st.info(f"SUPERSEDED by #{ui.deployment_id(dep.superseded_by)} while queued.", icon=":material/fast_forward:")
    elif state == deployment_pb2.DEPLOYMENT_STATE_QUEUED and dep.queue_position:
        st.info(f"QUEUED: number {dep.queue_position} in {dep.app}'s queue.", icon=":material/schedule:")
    else:
        st.info(f"{ui.deployment_state(dep).upper()}: {ui.phase_word(dep.phase)}…", icon=":material/progress_activity:")

    m = st.columns(4)
    m[0].metric("Build", "cached" if dep.build_skipped else ui.seconds(dep.build_seconds), border=True)
    m[1].metric("Deploy", ui.seconds(dep.deploy_seconds), border=True)
    total = ""
    if ui.has_time(dep.end_time) and ui.has_time(dep.create_time):
        total = f"{(ui.to_datetime(dep.end_time) - ui.to_datetime(dep.create_time)).total_seconds():.1f} s"
    m[2].metric("Total", total or "—", border=True)
    m[3].metric("Image", dep.image.split(":", 1)[-1][:12] if dep.image else "—", border=True,
                help=dep.image or None)
    if dep.server_outcomes:
        # Each server's part of the rollout, in rollout order (who failed, who went back).
        st.markdown("\n".join(f"- server `{o.server}`: {outcome_words(o)}" for o in dep.server_outcomes))
    if dep.image_digest:
        st.caption(f":material/fingerprint: every server ran `{dep.image_digest}`")


def body(dep, feed: live.Feed, running: bool) -> None:
    st.markdown(ui.stepper_html(ui.steps(dep)), unsafe_allow_html=True)
    outcome(dep)
    p = feed.progress
    if p is not None and p.total:
        text = f"Build step {p.current}/{p.total}" + (f": {p.message}" if p.message else "")
        st.progress(min(1.0, p.current / p.total), text=text[:120])
    elif dep.build_skipped:
        st.caption(":material/bolt: Image already built for this commit: no build ran.")
    st.markdown("#### Log")
    if not feed.lines:
        st.caption("Waiting for the first event…" if running else "No log lines.")
    elif running:
        # While it runs, show the end of the log: the newest lines are what one watches.
        st.code("\n".join(feed.lines[-LIVE_TAIL:]), language=None)
        st.caption(f"{len(feed.lines)} lines so far · last event #{feed.last_seq}")
    else:
        st.code("\n".join(feed.lines), language=None, height=min(520, 40 + 21 * len(feed.lines)))
        st.caption(f"{len(feed.lines)} lines · {feed.last_seq} events")
    if dep.phase_timings:
        with st.expander(":material/timer: Phase timings"):
            st.dataframe([{
                "phase": ui.phase_word(t.phase),
                "started": ui.local_time(t.start_time),
                "ended": ui.local_time(t.end_time),
                "seconds": round((ui.to_datetime(t.end_time) - ui.to_datetime(t.start_time)).total_seconds(), 2)
                if ui.has_time(t.end_time) and ui.has_time(t.start_time) else None,
            } for t in dep.phase_timings], hide_index=True, width="stretch")


def show(started_live: bool) -> None:
    """Read new events, then draw. Runs as the fragment body: alone every tick while live."""
    feed = live.feed_for(st.session_state, name)
    try:
        feed.pull(client)
        dep = client.get_deployment(name)
    except ApiError as err:
        banner(err)
        return
    if dep.state in ui.TERMINAL and not feed.done:
        # Finished, but this slice stopped short of the terminal event: take the rest at once.
        try:
            feed.pull(client, timeout=5.0)
        except ApiError as err:
            banner(err)
    header(dep)
    body(dep, feed, running=dep.state not in ui.TERMINAL)
    if started_live and dep.state in ui.TERMINAL:
        # Redraw once as a finished page, which also stops the timer below.
        st.rerun()


current = client.get_deployment(name)
is_live = current.state not in ui.TERMINAL
st.fragment(show, run_every=TICK_SECONDS if is_live else None)(is_live)
