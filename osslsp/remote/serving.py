"""Running the engine server: listen (Unix socket or TCP), load the model, serve until stopped,
then stop the engine thread cleanly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from aiohttp import web

from osslsp.remote.places import Listen
from osslsp.remote.server import EngineServer

ENGINE_STOP_SECONDS = 30.0  # at shutdown, how long the engine thread may take to stop
# A connection that sends no complete request for this long is closed (aiohttp's default: an hour),
# so half-open connections do not pile up.
IDLE_CONNECTION_SECONDS = 30.0
# How long one thread may hold the GIL while another waits for it (Python's default: 5 ms). The
# engine thread wants it back the moment the GPU finishes a step; the event loop streaming answers
# would otherwise keep it up to 5 ms, a third of a batched step.
GIL_SWITCH_SECONDS = 0.0005


async def serve(server: EngineServer, listen: Listen, announce: Callable[[str], None]) -> None:
    """Listen, load the model, serve until `server.stopping` is set; `announce` gets the address."""
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None,
                           keepalive_timeout=IDLE_CONNECTION_SECONDS)
    await runner.setup()
    if listen.is_unix:
        site: web.BaseSite = web.UnixSite(runner, str(listen.path))
    else:
        site = web.TCPSite(runner, listen.host, listen.port)
    await site.start()
    if listen.is_unix:
        listen.path.chmod(0o600)
        address = f"unix:{listen.path}"
    else:
        host, port = runner.addresses[0][:2]
        address = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    announce(address)
    server.engine.start()
    watcher = asyncio.create_task(server.watch_idle())
    try:
        await server.stopping.wait()
    finally:
        watcher.cancel()
        server.stopping.set()  # releases attached connections
        await runner.cleanup()
        await asyncio.to_thread(server.audit.close)  # the records of the last requests
        server.engine.close()
        # The engine thread stops at its next step: exiting while it ran inside torch aborted
        # the process ("terminate called without an active exception", exit code 134). A model
        # still loading cannot be stopped: after ENGINE_STOP_SECONDS the process exits anyway.
        await asyncio.to_thread(server.engine.join, ENGINE_STOP_SECONDS)
        if listen.is_unix:
            listen.path.unlink(missing_ok=True)
