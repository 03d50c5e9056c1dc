"""Relay to NATS JetStream (the ``siyu[nats]`` extra: nats-py).

Each event goes to the subject of its CloudEvents type (``siyu.order.recorded``)
with the header ``Nats-Msg-Id`` set to the event id, so JetStream drops a
message the relay sends again after a crash (within the stream's duplicate
window, two minutes by default). The stream is created if missing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from ...errors import StorageError
from ..models import LoggedEvent
from .base import Sink, encode_cloud_event, event_id

__all__ = ["NatsSink"]

T = TypeVar("T")


class NatsSink(Sink):
    """``NatsSink("nats://127.0.0.1:4222", stream="SIYU")``: events to ``<prefix>.<noun>.<verb>``."""

    def __init__(self, url: str = "nats://127.0.0.1:4222", *, stream: str = "SIYU", subject_prefix: str = "siyu",
                 name: str = "nats", timeout: float = 5.0, batch: int = 1000) -> None:
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise StorageError(f"the NATS relay needs nats-py: pip install 'siyu[nats]' ({exc})") from None
        self.url, self.stream, self.prefix, self.name = url, stream, subject_prefix, name
        self.timeout, self.batch = timeout, batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._js: Any = None

    def subject(self, event: LoggedEvent) -> str:
        return f"{self.prefix}.{event.cloud_type.removeprefix('siyu.')}"

    # nats-py is asyncio only: one private loop in a thread serves every publish call.
    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name=f"siyu-{self.name}", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout * 4)

    async def _jetstream(self) -> Any:
        import nats
        from nats.js.errors import NotFoundError

        if self._nc is None or self._nc.is_closed:
            # No reconnect loop inside the client: a failed publish returns to the relay, which
            # keeps its checkpoint and tries again on its next turn.
            self._nc = await nats.connect(self.url, connect_timeout=self.timeout, allow_reconnect=False,
                                          max_reconnect_attempts=0)
            self._js = self._nc.jetstream(timeout=self.timeout)
            try:
                await self._js.stream_info(self.stream)
            except NotFoundError:
                await self._js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
        return self._js

    async def _publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        try:
            js = await self._jetstream()
            futures = [
                await js.publish_async(self.subject(e), encode_cloud_event(e, source_id), stream=self.stream,
                                       headers={"Nats-Msg-Id": event_id(source_id, e)})
                for e in events
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:
                pass

    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        self._run(self._publish(events, source_id))

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._drop(), loop).result(self.timeout)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.timeout)
        loop.close()
        self._loop = self._thread = None
