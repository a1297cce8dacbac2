"""A synchronous httpx transport that calls an ASGI app in process.

httpx ships only an async ASGI transport; this one runs it on a private event loop in a
background thread, so the synchronous SDK (and the tests) talk to the real app with no server
and no mocks.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx


class ASGIAppTransport(httpx.BaseTransport):
    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asgi-transport", daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[httpx.Response, bytes]:
            body = request.read()
            async_request = httpx.Request(
                request.method, request.url, headers=request.headers, content=body, extensions=request.extensions
            )
            response = await self._inner.handle_async_request(async_request)
            content = await response.aread()
            await response.aclose()
            return response, content

        response, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, extensions=response.extensions
        )

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()
