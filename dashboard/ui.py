"""Small presentation helpers shared by the pages: status badges, times, the phase stepper, the CSS.

Kept apart from the pages so every page shows a state with the same word and colour, and so the
pure parts (stepper states, durations) are testable without a running app. Enum words come from
`client.names`: "running", "stop-old", the same vocabulary as the CLI's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone

import streamlit as st
from serversinc.v1 import app_pb2, deployment_pb2, server_service_pb2

from client.names import ago, deployment_id, enum_value_short, server_state_words, short_sha  # noqa: F401 - re-exported for pages
from client.watch import TERMINAL_STATES as TERMINAL
from client.watch import Phase, State

# (colour, icon) per word. Colours are st.badge's palette.
_BADGES = {
    "running": ("green", ":material/check_circle:"),
    "degraded": ("orange", ":material/warning:"),
    "down": ("red", ":material/heart_broken:"),
    "succeeded": ("green", ":material/check_circle:"),
    "online": ("green", ":material/cloud_done:"),
    "deploying": ("blue", ":material/progress_activity:"),
    "queued": ("gray", ":material/schedule:"),
    "failed": ("red", ":material/error:"),
    "offline": ("red", ":material/cloud_off:"),
    "cancelled": ("orange", ":material/cancel:"),
    "superseded": ("gray", ":material/fast_forward:"),
    "stopped": ("gray", ":material/stop_circle:"),
    "new": ("violet", ":material/fiber_new:"),
}
# Deployment "running" means in progress, not serving: shown as blue, unlike an app's "running".
_DEPLOYMENT_RUNNING = ("blue", ":material/progress_activity:")


def app_status(app: app_pb2.App) -> str:
    return enum_value_short(app_pb2.AppStatus, app.status) or "unknown"


def failed_beside(app: app_pb2.App) -> str:
    """The flag for a failed deployment beside the serving release ("" when there is none): the
    status still speaks for what serves, the flag says the newest attempt did not replace it."""
    if not (app.latest_deployment_failed and app.current_deployment):
        return ""
    return f"Deployment #{deployment_id(app.latest_deployment)} failed; #{deployment_id(app.current_deployment)} still serves"


def health_note(app: app_pb2.App) -> str:
    """Why the app is degraded or down, and whether its server has stopped answering."""
    parts = [app.health_detail] if app.health_detail else []
    if app.health_stale:
        parts.append(f"server not answering; last seen {ago(app.health_observe_time)}")
    return " · ".join(parts)


def deployment_state(dep: deployment_pb2.Deployment) -> str:
    return enum_value_short(State, dep.state) or "unknown"


def server_state(server) -> str:
    return enum_value_short(server_service_pb2.ServerState, server.state) or "unknown"


def phase_word(phase: int) -> str:
    return enum_value_short(Phase, phase) or "—"


def _style(word: str, deployment: bool) -> tuple[str, str]:
    if deployment and word == "running":
        return _DEPLOYMENT_RUNNING
    return _BADGES.get(word, ("gray", ":material/help:"))


def badge(word: str, *, deployment: bool = False) -> None:
    color, icon = _style(word, deployment)
    st.badge(word, color=color, icon=icon)


def badge_md(word: str, *, deployment: bool = False) -> str:
    """The badge as a Markdown directive, to sit inline in a heading or a line of text."""
    color, _ = _style(word, deployment)
    return f":{color}-badge[{word}]"


# Text colours for dataframe cells (a cell cannot hold a badge; a coloured word reads the same).
_CELL_COLOURS = {"green": "#1a7f52", "blue": "#2f6fed", "red": "#d92d32", "orange": "#c2620a",
                 "gray": "#7a8190", "violet": "#7c4dcc"}


def cell_style(word: str, *, deployment: bool = False) -> str:
    """CSS for a status word in a table (pandas Styler.map), in the badge's colour."""
    color, _ = _style(str(word), deployment)
    return f"color: {_CELL_COLOURS.get(color, '#7a8190')}; font-weight: 600"


# Times -----------------------------------------------------------------------------------------------
def has_time(ts) -> bool:
    return ts is not None and (ts.seconds != 0 or ts.nanos != 0)


def to_datetime(ts) -> datetime | None:
    return ts.ToDatetime(tzinfo=timezone.utc) if has_time(ts) else None


def local_time(ts) -> str:
    when = to_datetime(ts)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else ""


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value else "—"


# The phase stepper -------------------------------------------------------------------------------------
STEPS = [Phase.DEPLOYMENT_PHASE_QUEUED, Phase.DEPLOYMENT_PHASE_RESOLVE, Phase.DEPLOYMENT_PHASE_BUILD,
         Phase.DEPLOYMENT_PHASE_RELEASE_COMMAND, Phase.DEPLOYMENT_PHASE_START, Phase.DEPLOYMENT_PHASE_HEALTH, Phase.DEPLOYMENT_PHASE_SWITCH,
         Phase.DEPLOYMENT_PHASE_STOP_OLD, Phase.DEPLOYMENT_PHASE_DONE]


@dataclass(frozen=True)
class Step:
    phase: int
    label: str
    status: str    # "done", "current", "failed", "pending" or "skipped"
    duration: str  # "1.2 s", or "" when the phase never ran


def steps(dep: deployment_pb2.Deployment, now: datetime | None = None) -> list[Step]:
    """Where each phase stands: done before the current one, the current one running or failed,
    the rest pending (or skipped, when the deployment ended without reaching them)."""
    now = now or datetime.now(timezone.utc)
    timings = {t.phase: t for t in dep.phase_timings}
    ok = dep.state == State.DEPLOYMENT_STATE_SUCCEEDED
    ended = dep.state in TERMINAL
    at = dep.failure_phase or dep.phase or Phase.DEPLOYMENT_PHASE_QUEUED
    # The release command's step only for a deployment that ran one (most apps have none).
    shown = [p for p in STEPS if p != Phase.DEPLOYMENT_PHASE_RELEASE_COMMAND or p in timings or p == at]
    at_index = shown.index(at) if at in shown else 0
    out = []
    for i, phase in enumerate(shown):
        if ok or i < at_index:
            status = "done"
        elif i == at_index:
            status = "failed" if ended else "current"
        else:
            status = "skipped" if ended else "pending"
        if phase == Phase.DEPLOYMENT_PHASE_BUILD and dep.build_skipped and status == "done":
            status = "skipped"
        out.append(Step(phase, phase_word(phase), status, _duration(timings.get(phase), now, status)))
    return out


def _duration(timing, now: datetime, status: str) -> str:
    if timing is None or not has_time(timing.start_time) or status == "pending":
        return ""
    end = to_datetime(timing.end_time) or (now if status == "current" else None)
    if end is None:
        return ""
    return f"{max(0.0, (end - to_datetime(timing.start_time)).total_seconds()):.1f} s"


_ICONS = {"done": "✓", "current": "●", "failed": "✕", "pending": "", "skipped": "–"}


def stepper_html(items: list[Step]) -> str:
    cells = []
    for n, s in enumerate(items, 1):
        icon = _ICONS[s.status] or str(n)
        cells.append(
            f'<div class="sx-step sx-{s.status}"><div class="sx-dot">{icon}</div>'
            f'<div class="sx-label">{html.escape(s.label)}</div>'
            f'<div class="sx-time">{html.escape(s.duration) or "&nbsp;"}</div></div>'
        )
    return f'<div class="sx-stepper">{"".join(cells)}</div>'


CSS = """
<style>
.sx-stepper { display: flex; gap: 0; margin: 0.25rem 0 1rem 0; }
.sx-step { flex: 1; text-align: center; position: relative; }
.sx-step:not(:first-child)::before { content: ""; position: absolute; top: 17px; right: 50%; width: 100%;
  height: 3px; background: #d9dce3; z-index: 0; }
.sx-step.sx-done::before, .sx-step.sx-current::before, .sx-step.sx-failed::before { background: #21a366; }
.sx-dot { position: relative; z-index: 1; width: 36px; height: 36px; line-height: 36px; margin: 0 auto;
  border-radius: 50%; font-weight: 700; font-size: 15px; background: #eef0f4; color: #7a8190;
  border: 2px solid #d9dce3; }
.sx-done .sx-dot { background: #21a366; border-color: #21a366; color: #fff; }
.sx-current .sx-dot { background: #fff; border-color: #2f6fed; color: #2f6fed; animation: sx-pulse 1.2s infinite; }
.sx-failed .sx-dot { background: #e5484d; border-color: #e5484d; color: #fff; }
.sx-skipped .sx-dot { background: #f6f7f9; border-style: dashed; }
.sx-label { margin-top: 0.35rem; font-size: 0.85rem; font-weight: 600; }
.sx-pending .sx-label, .sx-skipped .sx-label { color: #9aa1ad; font-weight: 500; }
.sx-failed .sx-label { color: #e5484d; }
.sx-time { font-size: 0.75rem; color: #7a8190; }
@keyframes sx-pulse { 0% { box-shadow: 0 0 0 0 rgba(47,111,237,.45); } 70% { box-shadow: 0 0 0 9px rgba(47,111,237,0); }
  100% { box-shadow: 0 0 0 0 rgba(47,111,237,0); } }
.sx-muted { color: #7a8190; font-size: 0.9rem; }
/* Top navigation already frames the page: trim Streamlit's tall default top padding. */
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.5rem; }
</style>
"""


def inject_css() -> None:
    st.markdown(CSS, unsafe_allow_html=True)
