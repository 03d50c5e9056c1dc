"""``ws.channels``: find channel classes by name and build configured instances."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._plugins import Registry
from ..errors import ValidationError
from .base import Channel

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .outbox import OutboxChannel

__all__ = ["ChannelService"]


class ChannelService:
    """``ws.channels``: the workspace's channels.

    ``get(name, **config)`` builds a channel of a registered class bound to the
    workspace; options not given come from ``SIYU_<NAME>_<OPTION>``
    environment variables. A channel built without arguments is cached, so
    ``ws.channels.get("wecom")`` twice shares one access-token cache.
    ``install(channel)`` makes a ready instance (e.g. a
    :class:`siyu.testing.RecordingChannel`) the answer for its name.
    """

    def __init__(self, workspace: Workspace, classes: Registry[Any]) -> None:
        self._ws = workspace
        self._classes = classes
        self._instances: dict[str, Channel] = {}
        self._lock = threading.Lock()
        #: Shared token caches, keyed by provider, so instances reuse access tokens.
        self.tokens: dict[Any, Any] = {}

    def names(self) -> list[str]:
        """Names of every registered channel."""
        return sorted({*self._classes.names(), *self._instances})

    def installed(self, name: str) -> Channel | None:
        """The configured instance named ``name`` (from :meth:`get` or :meth:`install`), if any."""
        return self._instances.get(name)

    def cls(self, name: str) -> type[Channel]:
        """The class registered as ``name`` (raises UnknownChannelError with a did-you-mean)."""
        if name in self._instances:
            return type(self._instances[name])
        cls: type[Channel] = self._classes.get(name)
        return cls

    def get(self, name: str, **config: Any) -> Channel:
        """A channel instance bound to this workspace."""
        if not config and name in self._instances:
            return self._instances[name]
        cls = self.cls(name)
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ValidationError(f"channel class {cls!r} does not derive from siyu.channels.Channel")
        channel = cls(workspace=self._ws, **config)
        if not config:
            with self._lock:
                channel = self._instances.setdefault(name, channel)
        return channel

    def outbox(self, label: str | None = None) -> OutboxChannel:
        """The ``outbox`` channel (typed), optionally under another ``label``."""
        from .outbox import OutboxChannel

        channel = self.get("outbox") if label is None else self.get("outbox", label=label)
        if not isinstance(channel, OutboxChannel):
            raise ValidationError(f"the channel installed as 'outbox' is a {type(channel).__name__}, not an outbox")
        return channel

    def install(self, channel: Channel) -> Channel:
        """Answer ``get(channel.name)`` with this instance from now on."""
        if not isinstance(channel, Channel):
            raise ValidationError(f"install() takes a Channel instance, got {type(channel).__name__}")
        if channel.workspace is None:
            channel.workspace = self._ws
        self._instances[channel.name] = channel
        return channel

    def __contains__(self, name: object) -> bool:
        return name in self._instances or name in self._classes

    def __repr__(self) -> str:
        return f"<ChannelService {', '.join(self.names())}>"
