"""Lifecycle stage changes, tracked behaviour events, tag rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class StageChange:
    """One move of a user between lifecycle stages. ``from_stage`` is ``None``
    for the first stage; ``reason`` says what moved them (``"event:page_view"``,
    ``"order:1042"``, ``"sweep:dormant"``, ``"lost:del_follow_user"``)."""

    user_id: int
    from_stage: str | None
    to_stage: str
    at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class TrackedEvent:
    """A behaviour event recorded by ``ws.events.track``."""

    id: int
    user_id: int
    kind: str
    at: datetime
    key: str | None = None
    properties: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TagRule:
    """``tag`` is kept equal to the users matching ``expression``."""

    tag: str
    expression: str
    group_exclusive: bool = False
    created_at: datetime
    enabled: bool = True
