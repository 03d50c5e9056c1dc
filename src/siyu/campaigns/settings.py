"""Workspace campaign settings, and what a send of one campaign is set up with:
its gates, its channel and its renderer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._validation import check_mapping
from ..errors import ValidationError
from ..services._common import check_text
from . import platform_caps
from .gates import QuietHours, budget_rules
from .templates import Renderer

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.base import Channel
    from ..channels.service import ChannelService
    from ..storage.base import Transaction
    from .records import Stored

__all__ = ["DEFAULTS", "CampaignSettings", "GateConfig", "channel_for", "gates_for", "read_settings", "renderer_for"]

DEFAULTS: dict[str, Any] = {
    "budget": {"day": 1, "week": 3},
    "quiet_hours": ["21:00", "08:00"],
    "tz_attribute": "tz",
    "platform_caps": {},
}


@attrs.frozen(kw_only=True)
class GateConfig:
    """The gates of one campaign, resolved from workspace settings and the campaign."""

    needs_consent: bool
    counts_toward_budget: bool
    budget: tuple[tuple[str, int], ...]
    caps: tuple[Mapping[str, Any], ...]
    credits: bool
    quiet: QuietHours | None
    tz_attribute: str
    throttle: int | None


def read_settings(tx: Transaction) -> dict[str, Any]:
    """The workspace's settings: the stored ones over :data:`DEFAULTS`."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for name in DEFAULTS:
        raw = tx.campaigns.setting(name)
        if raw is not None:
            out[name] = json.loads(raw)
    return out


def gates_for(tx: Transaction, campaign: Stored) -> GateConfig:
    """The gates a send of ``campaign`` passes, with the workspace's settings as they are now."""
    row, config = campaign.row, campaign.config
    settings = read_settings(tx)
    medium = row.consent_channel
    caps = list(platform_caps.CAPS.get(medium, ()))
    overrides = settings.get("platform_caps") or {}
    if medium in overrides:
        caps = list(overrides[medium])
    marketing = row.purpose == "marketing"
    return GateConfig(
        needs_consent=row.purpose != "transactional",
        counts_toward_budget=marketing,
        budget=budget_rules(settings["budget"]) if marketing else (),
        caps=tuple(c for c in caps if c.get("period")) if marketing else (),
        credits=any(c.get("kind") == "credits" for c in caps),
        # Transactional notices (order shipped ...) are not held back by quiet hours.
        quiet=config.quiet(settings["quiet_hours"]) if marketing else None,
        tz_attribute=str(settings["tz_attribute"]),
        throttle=config.throttle,
    )


def channel_for(channels: ChannelService, name: str) -> Channel:
    """The channel a campaign sends through (installed, or built from its configuration)."""
    if not isinstance(name, str) or not name:
        raise ValidationError("channel must be a channel name such as 'outbox' or 'sms_aliyun'")
    channels.cls(name)  # UnknownChannelError with a did-you-mean
    # The workspace's one configured instance; the claim step has already checked
    # consent for the whole batch, so its per-message check is skipped.
    return channels._unchecked(name)


def renderer_for(campaign: Stored, channel: Channel) -> Renderer:
    row = campaign.row
    return Renderer(channel, row.template, row.variants, params=campaign.config.params, purpose=row.purpose)


class CampaignSettings:
    """Workspace-wide campaign settings (``ws.campaigns.settings`` / ``configure``)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def settings(self) -> dict[str, Any]:
        with self._uow.read() as tx:
            return read_settings(tx)

    def configure(
        self,
        *,
        budget: Mapping[str, int | None] | None = None,
        quiet_hours: object = ...,
        platform_caps: Mapping[str, Any] | None = None,
        tz_attribute: str | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if budget is not None:
            budget_rules(budget)
            values["budget"] = dict(budget)
        if quiet_hours is not ...:
            parsed = QuietHours.parse(quiet_hours)
            values["quiet_hours"] = None if parsed is None else parsed.as_list()
        if platform_caps is not None:
            caps = check_mapping(
                platform_caps, "platform_caps", '{"wecom": [{"key": "mass", "period": "day", "limit": 1}]}'
            )
            values["platform_caps"] = _check_caps(caps)
        if tz_attribute is not None:
            values["tz_attribute"] = check_text(tz_attribute, "tz_attribute", max_length=64)
        with self._uow.write() as tx:
            for name, value in values.items():
                tx.campaigns.set_setting(name, json.dumps(value, ensure_ascii=False))
            return read_settings(tx)


def _check_caps(caps: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for medium, rules in caps.items():
        if not isinstance(rules, list | tuple):
            raise ValidationError(f"platform_caps[{medium!r}] must be a list of cap dicts")
        checked = []
        for rule in rules:
            if not isinstance(rule, Mapping):
                raise ValidationError(f"platform_caps[{medium!r}] holds {rule!r}; each cap is a dict")
            if rule.get("kind") != "credits":
                budget_rules({rule.get("period"): 0})
                limit = rule.get("limit")
                if limit != "days_in_month" and (isinstance(limit, bool) or not isinstance(limit, int)):
                    raise ValidationError(f"cap {rule!r}: limit must be an int or 'days_in_month'")
            checked.append(dict(rule))
        out[str(medium)] = checked
    return out
