"""Gates every campaign send passes, in this order:

1. ``inactive`` -- the user was merged into another since the snapshot;
2. ``consent`` -- the latest consent record for the campaign's purpose on the
   channel's medium (or ``"*"``) grants it (transactional campaigns skip this);
3. ``suppressed`` -- the campaign suppression list (``ws.campaigns.suppress``)
   lifecycle-lost users (tag ``lifecycle/lost``: WeCom deletions ...) and
   users under a legal hold (``ws.privacy.hold``);
4. ``no_address`` -- the user has no identity the channel can reach
   (a phone for SMS, an ``external_userid`` for WeCom ...);
5. ``budget`` -- the per-user contact budget across ALL channels (marketing
   only; default 1 per calendar day and 3 per 7 calendar days in the business
   time zone);
6. ``platform_cap`` -- the platform caps of :mod:`siyu.campaigns.platform_caps`,
   and for mini-programs a one-time subscription credit for the template of
   the user's variant (:func:`without_credit`);
7. ``quiet_hours`` -- not a refusal: a send due in the user's quiet hours
   (user attribute ``tz`` or the business time zone) waits for the window.

Everything is computed with Roaring bitmaps over whole batches, never with a
query per user, so a preview over a million users stays fast.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from pyroaring import BitMap

from .._clock import start_of_day
from ..errors import ValidationError

if TYPE_CHECKING:
    from ..storage.base import Transaction

__all__ = ["GATES", "Gate", "QuietHours", "budget_rules", "over_limit", "window_start", "without_credit"]

class Gate(enum.StrEnum):
    """The gates of a campaign send, in the order they apply (see the module docstring)."""

    INACTIVE = "inactive"
    CONSENT = "consent"
    SUPPRESSED = "suppressed"
    NO_ADDRESS = "no_address"
    BUDGET = "budget"
    PLATFORM_CAP = "platform_cap"
    QUIET_HOURS = "quiet_hours"


GATES = tuple(g.value for g in Gate)
PERIODS = ("day", "week", "month", "rolling_24h")
#: The identity kind each medium sends to; other channels address users by id.
ADDRESS_KIND = {"sms": "phone", "email": "email", "wecom": "wecom_external_userid", "miniprogram": "wechat_openid"}
LOST_TAG = ("lifecycle", "lost")


def budget_rules(value: object) -> tuple[tuple[str, int], ...]:
    """Validate a contact budget: ``{"day": 1, "week": 3}`` (a ``None`` limit drops the period)."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"budget must be a dict like {{'day': 1, 'week': 3}}, got {value!r}")
    rules: list[tuple[str, int]] = []
    for period, limit in value.items():
        if period not in PERIODS:
            raise ValidationError(f"budget period {period!r} is not one of {PERIODS}")
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"budget limit for {period!r} must be an int >= 0, got {limit!r}")
        rules.append((str(period), limit))
    return tuple(rules)


def window_start(period: str, now: datetime, tz: tzinfo) -> datetime:
    """The first instant that counts toward ``period`` at ``now``."""
    today = now.astimezone(tz).date()
    if period == "day":
        return start_of_day(today, tz)
    if period == "week":
        return start_of_day(today - timedelta(days=6), tz)
    if period == "month":
        return start_of_day(today.replace(day=1), tz)
    if period == "rolling_24h":
        # The window is (now - 24 h, now]: a touch exactly 24 h old has aged out, as a
        # calendar day's touch has at midnight. Times are stored to the microsecond.
        return now - timedelta(hours=24) + timedelta(microseconds=1)
    raise ValidationError(f"unknown period {period!r}; use one of {PERIODS}")


def _limit(limit: object, now: datetime, tz: tzinfo) -> int:
    if limit == "days_in_month":
        local = now.astimezone(tz)
        return calendar.monthrange(local.year, local.month)[1]
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(f"a cap limit must be an int or 'days_in_month', got {limit!r}")
    return limit


def over_limit(
    touches: Iterable[tuple[int, datetime, str]],
    rules: Sequence[tuple[str, object]],
    now: datetime,
    tz: tzinfo,
    *,
    medium: str | None = None,
    candidates: BitMap | None = None,
) -> BitMap:
    """Users whose touches (on ``medium`` only, when given) already reach a limit
    of ``rules`` -- one more message would exceed it. A limit of 0 blocks every
    one of ``candidates``."""
    if not rules:
        return BitMap()
    starts = [(window_start(p, now, tz), _limit(limit, now, tz)) for p, limit in rules]
    if candidates is not None and any(limit <= 0 for _, limit in starts):
        return BitMap(candidates)
    counts: dict[int, list[int]] = {}
    for uid, at, channel in touches:
        if medium is not None and channel != medium:
            continue
        row = counts.setdefault(uid, [0] * len(starts))
        for i, (start, _) in enumerate(starts):
            if at >= start:
                row[i] += 1
    blocked = BitMap()
    for uid, row in counts.items():
        if any(n >= limit for n, (_, limit) in zip(row, starts, strict=True)):
            blocked.add(uid)
    return blocked


def _parse_time(value: object, name: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(f"quiet hours {name} must be a time or 'HH:MM', got {value!r}")


@attrs.frozen
class QuietHours:
    """Local times when nobody is messaged, e.g. 21:00-08:00 (may wrap midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, value: object) -> QuietHours | None:
        """``None``/``False``: none; ``("21:00", "08:00")``; or a QuietHours."""
        if value is None or value is False:
            return None
        if isinstance(value, QuietHours):
            return value
        if isinstance(value, list | tuple) and len(value) == 2:
            start, end = _parse_time(value[0], "start"), _parse_time(value[1], "end")
            if start == end:
                raise ValidationError("quiet hours start and end are equal; pass None for no quiet hours")
            return cls(start, end)
        raise ValidationError(f"quiet_hours must be ('21:00', '08:00') or None, got {value!r}")

    def contains(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_open(self, local: datetime) -> datetime:
        """The first instant at or after ``local`` outside quiet hours (same zone)."""
        if not self.contains(local):
            return local
        # Compare instants, not wall times: in a fall-back night the end time occurs twice
        # (fold 0 and 1), and comparing within one zone ignores fold, which once returned an
        # end already past and re-deferred the same records forever.
        instant = local.astimezone(UTC)
        day = local.date()
        for when in (day, day + timedelta(days=1)):
            for fold in (0, 1):
                candidate = datetime.combine(when, self.end, tzinfo=local.tzinfo).replace(fold=fold)
                if candidate.astimezone(UTC) > instant:
                    # Round trip: an end inside a spring-forward gap becomes the real local time.
                    return candidate.astimezone(UTC).astimezone(local.tzinfo)
        raise AssertionError("unreachable: tomorrow's end of quiet hours is in the future")

    def as_list(self) -> list[str]:
        return [self.start.isoformat(timespec="minutes"), self.end.isoformat(timespec="minutes")]


def user_zones(values: Mapping[int, Any], default: tzinfo) -> dict[int, tzinfo]:
    """Per-user time zones from attribute values; unknown names fall back to ``default``."""
    cache: dict[str, tzinfo] = {}
    out: dict[int, tzinfo] = {}
    for uid, name in values.items():
        if not isinstance(name, str):
            continue
        zone = cache.get(name)
        if zone is None:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                zone = default
            cache[name] = zone
        if zone is not default:
            out[uid] = zone
    return out


def medium_of(channels: Any, name: str) -> str:
    """The medium a channel name stands for on the suppression list and in consents
    (``"sms_aliyun"`` -> ``"sms"``); ``"*"`` and unknown names stand for themselves."""
    if name == "*" or name not in channels:
        return name
    found: Any = channels.installed(name) or channels.cls(name)
    return str(getattr(found, "consent_channel", "") or name)


def suppressed_users(tx: Transaction, channels: Any, medium: str) -> BitMap:
    """Users on the suppression list for ``medium``. Entries filed under a channel's own
    name (as siyu stored ``suppress(channel="sms_aliyun")`` before it mapped names to
    media) count for that channel's medium too."""
    names = [name for name in channels.names() if name != medium and medium_of(channels, name) == medium]
    return BitMap(tx.campaigns.suppressed(medium, names))


def lost_users(tx: Transaction) -> BitMap:
    """Users who must not be contacted whatever the campaign: those holding the
    lifecycle-lost tag, and those under a legal hold (PIPL: a hold allows
    storage only, no processing)."""
    tag_id = tx.tags.tag_id(*LOST_TAG)
    lost = BitMap(tx.tags.holders(tag_id)) if tag_id is not None else BitMap()
    return lost | BitMap(tx.privacy.held(None))


def without_credit(tx: Transaction, channel: str, kind: str, need: Mapping[str, BitMap]) -> BitMap:
    """Users lacking a one-time subscription credit (mini-programs) for a template
    they need: ``need`` maps a template to the users who would get it. A credit is
    per (address, template) and counts only on the address a send uses (the
    user's first identity of ``kind``). One bulk read per template, for a batch
    (send) and a whole audience (preview) alike."""
    broke = BitMap()
    for template, users in need.items():
        if users:
            broke |= users - BitMap(tx.campaigns.credited(channel, template, kind, users))
    return broke
