"""``ws.channels``: find channel classes by name and build configured instances."""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

from .._plugins import Registry
from .._validation import check_text
from ..errors import ValidationError
from .base import Channel, ContactScreen, ReceiptSink

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .outbox import OutboxChannel

__all__ = ["ChannelService"]


class ChannelService:
    """``ws.channels``: the workspace's channels.

    A workspace holds one configured instance per channel name, and every part
    of siyu that sends through that name (campaigns, previews, receipts, your
    own code) uses it:

    * ``get(name, **options)`` configures the channel: it builds an instance of
      the registered class with these options (the ones not given come from
      ``SIYU_<NAME>_<OPTION>`` environment variables) and makes it the
      workspace's instance for ``name``, replacing an earlier one.
    * ``get(name)`` returns that instance; if there is none yet, it builds one
      from the environment and keeps it, so ``ws.channels.get("wecom")`` twice
      shares one access-token cache.
    * ``install(channel)`` makes a ready instance (e.g. a
      :class:`siyu.testing.RecordingChannel`) the answer for its name.
    """

    def __init__(self, workspace: Workspace, classes: Registry[Any]) -> None:
        self._ws = workspace
        #: The contact policy every channel of the workspace asks before a marketing send
        #: (the workspace sets it right after building this service, before any channel exists).
        self.policy: ContactScreen | None = None
        #: Where the channels' parsed delivery receipts are recorded (the workspace's campaigns).
        self.receipts: ReceiptSink | None = None
        self._classes = classes
        self._instances: dict[str, Channel] = {}
        #: Names whose instance siyu built (not installed), and their consent-unchecked twins.
        self._built: set[str] = set()
        self._twins: dict[str, tuple[Channel, Channel]] = {}
        self._lock = threading.Lock()
        #: Shared token caches, keyed by provider, so instances reuse access tokens.
        self.tokens: dict[Any, Any] = {}

    def names(self) -> list[str]:
        """Names of every registered channel."""
        return sorted({*self._classes.names(), *self._instances})

    def installed(self, name: str) -> Channel | None:
        """The configured instance named ``name`` (from :meth:`get` or :meth:`install`), if any."""
        return self._instances.get(check_text(name, "name"))

    def cls(self, name: str) -> type[Channel]:
        """The class registered as ``name`` (raises UnknownChannelError with a did-you-mean)."""
        check_text(name, "name")
        if name in self._instances:
            return type(self._instances[name])
        cls: type[Channel] = self._classes.get(name)
        return cls

    def get(self, name: str, **config: Any) -> Channel:
        """The workspace's instance of channel ``name``.

        With options, configure it first: a new instance built with them becomes
        the one every later ``get(name)`` (and every campaign on ``name``) uses.
        """
        check_text(name, "name")
        if not config:
            existing = self._instances.get(name)
            if existing is not None:
                return existing
        channel = self._build(name, config)
        with self._lock:
            if config or name not in self._instances:
                self._instances[name] = channel
                self._built.add(name)
                self._twins.pop(name, None)
            return self._instances[name]

    def _build(self, name: str, config: dict[str, Any]) -> Channel:
        cls = self._classes.get(name) if name in self._classes else self.cls(name)
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ValidationError(f"channel class {cls!r} does not derive from siyu.channels.Channel")
        channel = cls(workspace=self._ws, **config)
        channel.policy, channel.receipts = self.policy, self.receipts
        return channel

    def _unchecked(self, name: str) -> Channel:
        """The instance of ``name`` for senders that have already checked consent and
        the suppression list for the whole batch (campaigns do, in their claim step):
        the same configuration, clients and token caches, without the per-message
        consent query. An instance given to :meth:`install` is used as it is."""
        channel = self.get(name)
        if name not in self._built or not channel.config.get("check_consent", True):
            return channel
        with self._lock:
            twin = self._twins.get(name)
            if twin is None or twin[0] is not channel:
                # A shallow copy shares the HTTP clients, templates and token caches.
                unchecked = copy.copy(channel)
                unchecked.config = {**channel.config, "check_consent": False}
                twin = self._twins[name] = (channel, unchecked)
            return twin[1]

    def outbox(self, label: str | None = None) -> OutboxChannel:
        """The ``outbox`` channel (typed), optionally under another ``label``."""
        from .outbox import OutboxChannel

        # A labelled outbox is a view for dry runs; it does not replace the workspace's outbox.
        channel = self.get("outbox") if label is None else self._build("outbox", {"label": label})
        if not isinstance(channel, OutboxChannel):
            raise ValidationError(f"the channel installed as 'outbox' is a {type(channel).__name__}, not an outbox")
        return channel

    def install(self, channel: Channel) -> Channel:
        """Answer ``get(channel.name)`` with this instance from now on."""
        if not isinstance(channel, Channel):
            raise ValidationError(f"install() takes a Channel instance, got {type(channel).__name__}")
        if channel.workspace is None:
            channel.workspace = self._ws
        if channel.policy is None:
            channel.policy = self.policy
        if channel.receipts is None:
            channel.receipts = self.receipts
        with self._lock:
            self._instances[channel.name] = channel
            self._built.discard(channel.name)
            self._twins.pop(channel.name, None)
        return channel

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._instances or name in self._classes)

    def __repr__(self) -> str:
        return f"<ChannelService {', '.join(self.names())}>"
