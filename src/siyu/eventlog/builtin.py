"""The built-in event consumers, declared in one table.

Each reaction that may lag behind the change that causes it reads the log
as a named consumer with its own checkpoint. Consequences that must commit
with the change itself (points, growth, coupons) are direct calls inside
the writing transaction instead and never appear here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .consumers import Consumer

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["builtin_consumers"]


def builtin_consumers(ws: Workspace) -> list[Consumer]:
    """In delivery order: stage moves and referral effects first, so the tag rules and
    campaign triggers that read them see them in the same round."""
    return [
        Consumer(name="siyu.lifecycle", handle=ws.lifecycle.observer.handle, types=ws.lifecycle.observer.types),
        Consumer(name="siyu.referrals", handle=ws.referrals.on_events, types=ws.referrals.event_types),
        Consumer(name="siyu.activities", handle=ws.flash_sales.on_events, types=ws.flash_sales.event_types),
        Consumer(name="siyu.tasks", handle=ws.tasks.on_events, types=ws.tasks.event_types),
        Consumer(name="siyu.tag_rules", handle=ws.tags.rules.observer.handle),
        Consumer(name="siyu.privacy.audit", handle=ws.privacy.auditor.handle, types=ws.privacy.auditor.types,
                 per_event=True),
        Consumer(name="siyu.campaigns", handle=ws.campaigns.observer.handle, per_event=True),
    ]
