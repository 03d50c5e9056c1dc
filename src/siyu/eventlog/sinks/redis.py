"""Relay to Redis Streams (the ``siyu[redis]`` extra: redis-py).

Each event is one stream entry whose id is ``<position>-0``: Redis refuses an
id at or below the stream's last one, so a batch sent again after a crash adds
nothing and the stream holds each event once. One stream per workspace, then.
Fields: ``id`` (the CloudEvents id), ``type`` and ``event`` (the CloudEvents JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import StorageError
from ..models import LoggedEvent
from .base import Sink, encode_cloud_event, event_id

__all__ = ["RedisStreamSink"]


class RedisStreamSink(Sink):
    """``RedisStreamSink("redis://127.0.0.1:6379/0", stream="siyu:events", maxlen=None)``."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, stream: str = "siyu:events",
                 maxlen: int | None = None, name: str = "redis", timeout: float = 5.0, batch: int = 1000) -> None:
        try:
            import redis
        except ImportError as exc:
            raise StorageError(f"the Redis relay needs redis-py: pip install 'siyu[redis]' ({exc})") from None
        self.stream, self.maxlen, self.name, self.batch = stream, maxlen, name, batch
        self._client: Any = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        pipe = self._client.pipeline(transaction=False)
        # XADD spelled out: redis-py's xadd() rebuilds the same argument list with checks per call.
        trim = () if self.maxlen is None else ("MAXLEN", "~", self.maxlen)
        command, stream = pipe.execute_command, self.stream
        for e in events:
            command("XADD", stream, *trim, f"{e.position}-0", "id", event_id(source_id, e), "type", e.cloud_type,
                    "event", encode_cloud_event(e, source_id))
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, Exception) and "equal or smaller" not in str(result):
                raise result  # not a repeat of an entry the stream already has

    def close(self) -> None:
        self._client.close()
