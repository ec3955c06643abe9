"""A grpc.aio server on an event loop of its own thread, started and stopped from plain code.

Why asyncio: a stream (a deployment watch, a log follow) is a coroutine that holds no thread
while it waits, so a thousand open streams cost a thousand small tasks, not a thousand threads.
Unary handlers stay synchronous: grpc.aio runs a non-async handler in the server's
`migration_thread_pool`, whose size bounds only the calls that are running, never the streams
that are open. The loop runs in a background thread so `run_server(...)` keeps its synchronous
`with run_server(...) as (server, port)` shape for `main` and the tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc


class LoopServer:
    """A started grpc.aio server and the loop it runs on; `call` runs a coroutine there."""

    def __init__(self, server: grpc.aio.Server, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.server = server
        self.loop = loop
        self.port = port

    def call(self, coroutine: Awaitable, timeout: float | None = None):
        """Runs `coroutine` on the server's loop from another thread and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


async def in_thread(iterator, on_cancel=lambda: None):
    """The items of a blocking iterator, each `next` run in the loop's pool, so a thread is held
    only while an item is being made. grpc.aio does not call a synchronous handler's callbacks
    when its client goes away; this coroutine is cancelled instead: it calls `on_cancel()` and
    closes the iterator once its pending `next` returns."""
    loop = asyncio.get_running_loop()
    done = object()
    while True:
        pending = loop.run_in_executor(None, next, iterator, done)
        try:
            item = await asyncio.shield(pending)
        except asyncio.CancelledError:
            # The interrupt may call Docker (abort a build, remove its container): in the pool,
            # never blocking the loop's other streams.
            try:
                loop.run_in_executor(None, on_cancel)
            except RuntimeError:  # the pool is already shut down: the server is stopping
                on_cancel()
            close = getattr(iterator, "close", lambda: None)
            pending.add_done_callback(lambda _: loop.run_in_executor(None, close))
            raise
        if item is done:
            return
        yield item


async def _stop(server: grpc.aio.Server, grace: float) -> None:
    """Stops the server, then cancels what is left on the loop (a synchronous handler still in
    the pool after the grace period), so the loop closes with no task pending."""
    await server.stop(grace)
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


@contextmanager
def serve(setup: Callable[[grpc.aio.Server], Awaitable[int]], *, workers: int, name: str,
          interceptors=(), options=(), grace: float = 2.0) -> Iterator[LoopServer]:
    """Builds a grpc.aio server on a new loop thread, lets `setup(server)` add services and bind
    (returning the bound port, 0 meaning it could not bind), starts it and yields it; on exit
    stops it with `grace` seconds for calls in flight, then ends the loop and the pool.

    Streams still open at exit are cancelled by the stop (their coroutines see CancelledError).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"{name}-loop", daemon=True)
    thread.start()
    pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    loop.set_default_executor(pool)  # run_in_executor(None, ...) shares the bounded pool

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(migration_thread_pool=pool, interceptors=list(interceptors),
                                 options=list(options))
        bound = await setup(server)
        if bound == 0:
            raise RuntimeError(f"{name}: cannot listen")
        await server.start()
        return server, bound

    try:
        server, bound = asyncio.run_coroutine_threadsafe(start(), loop).result()
        running = LoopServer(server, loop, bound)
        try:
            yield running
        finally:
            running.call(_stop(server, grace))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        pool.shutdown(wait=False, cancel_futures=True)
