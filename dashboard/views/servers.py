"""Servers page: the Tugboat agents the control plane deploys to, with their live state.

The control plane checks each agent when the list is read, so a refresh is a fresh health check;
an offline server says when its agent last answered.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.api import get_client

client = get_client()
servers = client.list_servers()

title, refresh = st.columns([5, 1], vertical_alignment="bottom")
title.title("Servers")
refresh.button("Refresh", icon=":material/refresh:", key="servers_refresh", width="stretch")

online = sum(1 for s in servers if ui.server_state(s) == "online")
m = st.columns(3)
m[0].metric("Servers", len(servers), border=True)
m[1].metric("Online", online, border=True)
m[2].metric("Running containers", sum(s.running_containers for s in servers), border=True)

if not servers:
    st.info("No servers registered. scripts/run.sh registers the local agent.", icon=":material/info:")

for start in range(0, len(servers), 3):
    for col, server in zip(st.columns(3), servers[start:start + 3]):
        with col, st.container(border=True):
            head, right = st.columns([3, 1], vertical_alignment="center")
            head.markdown(f"### :material/dns: {server.name}")
            with right:
                ui.badge(ui.server_state(server))
            st.markdown(f":material/lan: Agent at `{server.address}`")
            st.markdown(f":material/deployed_code: Docker **{server.docker_version or '—'}** · "
                        f"Tugboat **{server.agent_version or '—'}**")
            n = server.running_containers
            st.markdown(f":material/play_circle: **{n}** running container{'' if n == 1 else 's'}")
            if server.error:
                st.error(server.error, icon=":material/cloud_off:")
            if ui.server_state(server) == "offline":
                # How long it has been gone: the words `servers list` prints, the time to the second.
                st.markdown(f":material/history: {ui.server_state_words(server).capitalize()}"
                            + (f" ({ui.local_time(server.last_seen_time)})" if server.HasField("last_seen_time") else ""))
            st.caption(f"Registered {ui.local_time(server.create_time) or '—'}")
