"""Container logs read on the agent's event loop: a log follower holds a socket, not a thread.

docker-py's log stream is a blocking read, so each `StreamLogs --follow` used to pin a server
thread while its container was quiet. This reader speaks the Engine API's logs endpoint itself
over an asyncio connection to the same daemon the Docker adapter uses (a unix socket, or plain
tcp): GET /containers/{id}/logs, HTTP/1.1, chunked or not, Docker's multiplexed frames (8-byte
header: stream, 0, 0, 0, big-endian length) unless the container has a TTY (raw stream).
Cancelling the coroutine closes the connection, which ends the follow on the daemon too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from agent.docker_engine import EngineError, NotOnEngine, daemon_url, split_timestamp

MAX_LINE = 1024 * 1024  # a longer line is cut here: the follower's memory stays bounded


class LogReader:
    """Opens log streams of containers on one Docker daemon (`unix://path` or `tcp://host:port`)."""

    # Log streams open in this process: each holds one connection to the daemon until it ends.
    open_streams = 0

    def __init__(self, daemon_url: str) -> None:
        self.daemon_url = daemon_url

    @classmethod
    def for_client(cls, client) -> "LogReader":
        return cls(daemon_url(client.api))

    async def _connect(self):
        url = urlsplit(self.daemon_url)
        if url.scheme in ("unix", "http+unix"):
            return await asyncio.open_unix_connection(url.path)
        if url.scheme in ("tcp", "http"):
            return await asyncio.open_connection(url.hostname, url.port or 2375)
        raise EngineError(f"cannot follow logs over {url.scheme}:// (unix or plain tcp only)")

    async def lines(self, container_id: str, *, follow: bool, tail: int,
                    since: datetime | None = None) -> AsyncIterator[tuple[datetime, str]]:
        """(timestamp, line) of a container's stdout and stderr, the last `tail` first (0: all);
        with `since`, only lines recorded at or after it (the engine applies tail to those)."""
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow),
                  "tail": tail if tail > 0 else "all"}
        if since is not None:
            params["since"] = unix_time(since)
        query = urlencode(params)
        reader, writer = await self._connect()
        LogReader.open_streams += 1  # on the event loop's thread only: no lock needed
        try:
            writer.write(f"GET /containers/{container_id}/logs?{query} HTTP/1.1\r\n"
                         "Host: docker\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status, headers = await _head(reader)
            if status == 404:
                raise NotOnEngine(f"container {container_id} not found")
            if status != 200:
                raise EngineError(f"logs of {container_id}: HTTP {status}")
            body = _chunks(reader) if "chunked" in headers.get("transfer-encoding", "") else _plain(reader)
            frames = body if "raw-stream" in headers.get("content-type", "") else _demux(body)
            async for line in _split(frames):
                yield split_timestamp(line.decode("utf-8", "replace"))
        finally:
            LogReader.open_streams -= 1
            writer.close()


def unix_time(moment: datetime) -> str:
    """The Engine API's `since`: seconds since the epoch with nanoseconds ("1700000000.123456000")."""
    micros = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}000"


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise EngineError(f"unexpected answer from the Docker daemon: {status_line[:80]!r}") from None
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip().lower()
    return status, headers


async def _plain(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while data := await reader.read(65536):
        yield data


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)  # the chunk's CRLF


async def _demux(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Payloads of Docker's multiplexed frames, whatever the chunking of `body`."""
    buf = bytearray()
    async for data in body:
        buf += data
        while len(buf) >= 8:
            length = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + length:
                break
            yield bytes(buf[8:8 + length])
            del buf[:8 + length]


async def _split(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buf = b""
    async for data in frames:
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r")
        if len(buf) > MAX_LINE:
            yield buf[:MAX_LINE]
            buf = b""
    if buf:
        yield buf
