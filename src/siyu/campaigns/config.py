"""A campaign's configuration beyond its columns, typed, and converted to and from its
stored JSON in one place (:func:`load_config`, :func:`dump_config`) by the shared
converter (:mod:`siyu._convert`).

Stored as ``{"schedule": {"start_at": ISO | null, "rrule": str | null} | null,
"throttle": int | null, "trigger": {"event", "where", "within_s"} | null,
"params": [str] | null, "seed": int}`` plus ``"quiet_hours": ["21:00", "08:00"] | null``
when the campaign sets its own quiet hours instead of the workspace's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

import attrs
import cattrs

from .._convert import converter
from ..errors import StorageError
from .gates import QuietHours
from .models import Trigger
from .schedule import Schedule

__all__ = ["CampaignConfig", "ScheduleSpec", "TriggerSpec", "dump_config", "load_config"]


@attrs.frozen(kw_only=True)
class ScheduleSpec:
    """When a campaign is due: a first time and/or an RFC 5545 recurrence rule."""

    start_at: datetime | None = None
    rrule: str | None = None

    def schedule(self, tz: tzinfo) -> Schedule:
        """The schedule in the business time zone ``tz``."""
        return Schedule(self.start_at, self.rrule, tz)


@attrs.frozen(kw_only=True)
class TriggerSpec:
    """The stored form of a :class:`~siyu.campaigns.Trigger`."""

    event: str
    where: dict[str, Any] = attrs.field(factory=dict)
    within_s: float | None = None

    @classmethod
    def of(cls, trigger: Trigger) -> TriggerSpec:
        within = None if trigger.within is None else trigger.within.total_seconds()
        return cls(event=trigger.event, where=dict(trigger.where), within_s=within)

    def trigger(self) -> Trigger:
        within = None if self.within_s is None else timedelta(seconds=self.within_s)
        return Trigger(event=self.event, where=dict(self.where), within=within)


@attrs.frozen(kw_only=True)
class CampaignConfig:
    """What ``ws.campaigns.create`` was told besides the campaign's columns."""

    schedule: ScheduleSpec | None = None
    throttle: int | None = None
    trigger: TriggerSpec | None = None
    #: The parameters a provider template takes, in order (``params=``).
    params: tuple[str, ...] | None = None
    #: The seed of the campaign's random choices (pilot, holdout, variants, samples).
    seed: int = 0
    #: Whether the campaign sets its own quiet hours (``quiet_hours``) instead of the workspace's.
    own_quiet_hours: bool = False
    quiet_hours: tuple[str, str] | None = None

    @property
    def triggered(self) -> bool:
        return self.trigger is not None

    def schedule_in(self, tz: tzinfo) -> Schedule | None:
        """The campaign's schedule in the business time zone, if it has one."""
        return None if self.schedule is None else self.schedule.schedule(tz)

    def trigger_model(self) -> Trigger | None:
        return None if self.trigger is None else self.trigger.trigger()

    def quiet(self, workspace_setting: object) -> QuietHours | None:
        """The quiet hours a send keeps: the campaign's own, else the workspace's setting."""
        return QuietHours.parse(self.quiet_hours if self.own_quiet_hours else workspace_setting)


def load_config(raw: Mapping[str, Any]) -> CampaignConfig:
    """The typed config of a stored config object."""
    try:
        data = {k: v for k, v in raw.items() if v is not None}
        data["own_quiet_hours"] = "quiet_hours" in raw
        return converter.structure(data, CampaignConfig)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
        raise StorageError(
            f"a stored campaign config cannot be read ({type(exc).__name__}: {exc}): {dict(raw)!r}; "
            "it was changed outside siyu or by a newer version"
        ) from None


def dump_config(config: CampaignConfig) -> dict[str, Any]:
    """The config object to store (the shape every siyu version reads)."""
    out: dict[str, Any] = converter.unstructure(config)
    own = out.pop("own_quiet_hours")
    quiet = out.pop("quiet_hours")
    if own:
        out["quiet_hours"] = quiet
    if config.params is not None:
        out["params"] = list(config.params)
    return out
