"""Servers' live state: ListServers asks every agent at once, and an offline server says when its
agent last answered (`servers list`, human and --json), through the real API, TLS and agent."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from serversinc.v1 import server_service_pb2 as spb

from services import platform as platform_module
from services.agents import client as agents_client


class GatedProxy:
    """127.0.0.1:PORT in front of the real agent. It accepts connections at once (so a caller
    sees it dialled: `dialled` is set) but carries no byte until `open` is set; `close` makes the
    address refuse connections, as a stopped agent's does."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.dialled, self.open = threading.Event(), threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self._sockets.append(conn)
            self.dialled.set()
            threading.Thread(target=self._carry, args=(conn,), daemon=True).start()

    def _carry(self, conn: socket.socket) -> None:
        self.open.wait()
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            conn.close()
            return
        self._sockets.append(upstream)
        threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()
        _pump(conn, upstream)

    def close(self) -> None:
        self.open.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept; close alone leaves it listening
        except OSError:
            pass
        self.listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# What is tested is the control plane's asking and the CLI's words (SQLite only: suite time).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_agents_are_asked_at_once_and_an_offline_server_shows_when_it_was_last_seen(
        control_plane, agent, control_plane_cli, monkeypatch):
    # Deadlines long enough for a loaded machine: an agent asked in turn still misses the gate
    # (the next is dialled only after the previous one's deadline), whatever its length.
    monkeypatch.setattr(agents_client, "CONNECT_SECONDS", 15.0)
    monkeypatch.setattr(platform_module, "STATUS_SECONDS", 15.0)
    proxies = {f"edge-{i}": GatedProxy(agent.address) for i in range(3)}
    try:
        for name, proxy in proxies.items():
            control_plane.servers.CreateServer(spb.CreateServerRequest(name=name, address=proxy.address))
        with ThreadPoolExecutor(1) as pool:
            listing = pool.submit(control_plane.servers.ListServers, spb.ListServersRequest(), timeout=90)
            # Every agent is dialled while none has answered yet: asked one after the other, the
            # second would be dialled only after the first had used up its deadline, and the
            # first would then be offline.
            for proxy in proxies.values():
                assert proxy.dialled.wait(60)
            for proxy in proxies.values():
                proxy.open.set()
            online = {s.name: s for s in listing.result().servers}
        for name in proxies:
            assert online[name].state == spb.SERVER_STATE_ONLINE, online[name]
            assert online[name].HasField("last_seen_time")
    finally:
        for proxy in proxies.values():
            proxy.close()

    # The agents are gone: offline, last seen when the list above reached them.
    cli = control_plane_cli(control_plane.address)
    listed = {s["name"]: s for s in cli.json("servers", "list", "--json")}
    for name in proxies:
        assert listed[name]["state"] == "SERVER_STATE_OFFLINE", listed[name]
        assert listed[name]["error"], listed[name]
        seen = spb.Server()
        seen.last_seen_time.FromJsonString(listed[name]["last_seen_time"])
        assert seen.last_seen_time == online[name].last_seen_time
    assert listed["local"]["state"] == "SERVER_STATE_ONLINE"
    table = cli("servers", "list").stdout
    for name in proxies:
        line = next(row for row in table.splitlines() if row.startswith(name))
        assert "offline, last seen just now" in line, table
