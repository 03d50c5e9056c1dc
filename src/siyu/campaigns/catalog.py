"""Campaign definitions: create (checking every argument), read, list, cancel,
and the delivery records of one campaign."""

from __future__ import annotations

import builtins
import json
import random
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
from pyroaring import BitMap, FrozenBitMap

from .. import events as events_module
from .._validation import MAX_BATCH, MAX_ID, check_optional_id, check_optional_text
from ..channels.receipts import ReceiptStatus
from ..errors import Conflict, NotFound, ValidationError
from ..events import CampaignCreated, Event
from ..services._common import check_int, check_many, check_text
from ..storage.contracts.campaigns import CampaignRow
from .config import CampaignConfig, ScheduleSpec, TriggerSpec, dump_config
from .gates import QuietHours
from .models import Campaign, Delivery, Trigger
from .records import HOLDOUT, find, save, stored, to_model
from .schedule import Schedule
from .settings import channel_for
from .state import CampaignState, dump_state
from .state import CampaignStatus as S
from .templates import Renderer

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..storage.base import Transaction

__all__ = ["PURPOSES", "CampaignCatalog"]

PURPOSES = ("marketing", "transactional")


class CampaignCatalog:
    """Creates, reads and cancels campaign definitions."""

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService) -> None:
        self._uow = uow
        self._channels = channels

    def create(
        self,
        name: str,
        *,
        channel: str,
        template: str,
        audience: object = None,
        variants: Mapping[str, Mapping[str, Any]] | None = None,
        goal: str | None = None,
        attribution_window: timedelta = timedelta(days=3),
        purpose: str = "marketing",
        non_personalized: bool = False,
        schedule: object = None,
        throttle: int | None = None,
        trigger: Trigger | Mapping[str, Any] | None = None,
        params: Iterable[str] | None = None,
        quiet_hours: object = ...,
    ) -> Campaign:
        cname = check_text(name, "name", max_length=100)
        _check_options(template, purpose, non_personalized, attribution_window, goal, throttle)
        clean = _variants(variants)
        trig = _trigger(trigger)
        bitmap = _audience(audience) if audience is not None else None
        if trig is None and (bitmap is None or not bitmap):
            raise ValidationError(
                f"campaign {cname!r} has an empty audience; take a snapshot with users in it "
                "(ws.segments.snapshot(name)) or pass user ids"
            )
        params_ = None if params is None else tuple(
            check_text(p, "param", max_length=64) for p in check_many(params, "params", "['name', 'code']")
        )
        chan = channel_for(self._channels, channel)
        renderer = Renderer(chan, template, clean, params=params_, purpose=purpose)
        if non_personalized and renderer.all_user_variables():
            raise ValidationError(
                f"non_personalized=True but the template uses user attributes {list(renderer.all_user_variables())}; "
                "use campaign data only (put the values in each variant)"
            )
        now = self._uow.now()
        sched = Schedule.parse(schedule, self._uow.tz, now)
        status = S.ACTIVE if trig is not None else (S.SCHEDULED if sched is not None else S.DRAFT)
        row = CampaignRow(
            id=0, name=cname, channel=channel, consent_channel=chan.consent_channel or chan.name, template=template,
            variants=clean, goal=goal, attribution_us=int(attribution_window.total_seconds() * 1_000_000),
            purpose=purpose, non_personalized=non_personalized, status=status.value,
            config=_config(sched, throttle, trig, params_, quiet_hours), audience=None if bitmap is None else
            bitmap.serialize(), audience_count=0 if bitmap is None else len(bitmap), created_at=now,
            state=dump_state(CampaignState(next_run_at=None if sched is None else sched.first())),
        )
        with self._uow.write() as tx:
            if bitmap is not None:
                _require_existing(tx, bitmap)
            if tx.campaigns.by_name(cname) is not None:
                raise Conflict(
                    f"a campaign named {cname!r} exists; pick another name or use ws.campaigns.get({cname!r})"
                )
            cid = tx.campaigns.add(row)
            tx.emit(CampaignCreated(at=now, campaign_id=cid, name=cname, channel=channel))
            tx.meta.bump("campaigns")
            return to_model(find(tx, cid))

    def get(self, campaign: int | str) -> Campaign:
        with self._uow.read() as tx:
            return to_model(find(tx, campaign))

    def list(self) -> builtins.list[Campaign]:
        with self._uow.read() as tx:
            return [to_model(stored(r)) for r in tx.campaigns.all()]

    def cancel(self, campaign: int | str) -> Campaign:
        with self._uow.write() as tx:
            cancelled = save(tx, find(tx, campaign), status=S.CANCELLED)
            tx.meta.bump("campaigns")
        return to_model(cancelled)

    def deliveries(
        self, campaign: int | str, *, status: str | None = None, user_id: int | None = None, limit: int = 1000,
        after_id: int = 0,
    ) -> builtins.list[Delivery]:
        check_optional_text(status, "status")
        check_optional_id(user_id, "user_id")
        check_int(limit, "limit", minimum=1, maximum=MAX_BATCH)
        check_int(after_id, "after_id", minimum=0, maximum=MAX_ID)
        with self._uow.read() as tx:
            found = find(tx, campaign)
            rows = tx.campaigns.deliveries(found.id, user_id=user_id, status=status, after_id=after_id, limit=limit)
            receipts = tx.campaigns.receipts([r.id for r in rows if r.status == "sent"])
        out = []
        for r in rows:
            d = Delivery.of(r)
            got = receipts.get(r.id)
            if got is not None:
                d = attrs.evolve(d, receipt=ReceiptStatus(got.status), receipt_code=got.code,
                                 receipt_at=got.reported_at)
            out.append(d)
        return out


# -- checking a definition ----------------------------------------------------------------------------------------


def _check_options(
    template: object, purpose: object, non_personalized: object, attribution_window: object, goal: object,
    throttle: object,
) -> None:
    if not isinstance(template, str) or not template.strip():
        raise ValidationError("template must be non-empty text (or a provider template code such as 'SMS_123')")
    if purpose not in PURPOSES:
        raise ValidationError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    if not isinstance(non_personalized, bool):
        raise ValidationError("non_personalized must be True or False")
    if not isinstance(attribution_window, timedelta) or attribution_window <= timedelta(0):
        raise ValidationError("attribution_window must be a positive timedelta, e.g. timedelta(days=3)")
    if goal is not None:
        check_text(goal, "goal", max_length=64)
    if throttle is not None:
        check_int(throttle, "throttle (messages per minute)", minimum=1)


def _variants(variants: object) -> dict[str, dict[str, Any]]:
    variants = {"A": {}} if variants is None else variants
    if not isinstance(variants, Mapping) or not variants:
        raise ValidationError("variants must be a non-empty dict like {'A': {...}, 'B': {...}}")
    clean: dict[str, dict[str, Any]] = {}
    for vname, data in variants.items():
        check_text(vname, "variant name", max_length=30)
        if vname == HOLDOUT:
            raise ValidationError("'holdout' is reserved for the group that gets nothing; rename the variant")
        if not isinstance(data, Mapping):
            raise ValidationError(f"variant {vname!r} must be a dict of template data, got {type(data).__name__}")
        clean[vname] = {str(k): v for k, v in data.items()}
    try:
        json.dumps(clean, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"variant data must be JSON-able (str, int, ...): {exc}") from None
    return clean


def _audience(value: object) -> BitMap:
    """A snapshot (anything with ``user_ids``), a bitmap, or an iterable of user ids."""
    ids = getattr(value, "user_ids", value)
    if isinstance(ids, BitMap | FrozenBitMap):
        return BitMap(ids)
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise ValidationError(
            f"audience must be a segment snapshot (ws.segments.snapshot(name)) or an iterable of user ids, "
            f"got {type(value).__name__}"
        )
    out = BitMap()
    for uid in ids:
        if isinstance(uid, bool) or not isinstance(uid, int) or not 0 < uid < 2**32:
            raise ValidationError(f"audience contains {uid!r}; user ids are positive ints")
        out.add(uid)
    return out


def _require_existing(tx: Transaction, audience: BitMap) -> None:
    """Refuse an audience naming users that were never created (a typo, another shop's ids)."""
    count, top = tx.segments.user_span()
    if count == top:  # dense ids: exactly 1..top exist, no query per id needed
        known = BitMap()
        known.add_range(1, top + 1)
    else:
        known = BitMap(tx.users.exists(audience))
    unknown = audience - known
    if unknown:
        shown = ", ".join(str(uid) for uid in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise NotFound(
            f"the audience names {len(unknown)} user id(s) that do not exist ({shown}{more}); "
            "pass ids of existing users or a segment snapshot (ws.segments.snapshot(name))"
        )


def _trigger(value: object) -> Trigger | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        given = dict(value)
        try:
            value = Trigger(**given)
        except TypeError:
            raise ValidationError(
                f"trigger {given!r} takes the keys event, where and within, e.g. {{'event': 'UserCreated'}}"
            ) from None
    if not isinstance(value, Trigger):
        raise ValidationError(f"trigger must be a siyu.campaigns.Trigger or a dict, got {type(value).__name__}")
    if not isinstance(value.event, str) or not isinstance(value.where, Mapping):
        raise ValidationError("trigger event must be an event class name and where= a dict of attribute values")
    if value.within is not None and not isinstance(value.within, timedelta):
        raise ValidationError(f"trigger within= must be a timedelta, got {type(value.within).__name__}")
    try:
        json.dumps(dict(value.where), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"trigger where= values must be JSON-able (str, int, ...): {exc}") from None
    if value.event == "points_expiring":
        if not isinstance(value.within, timedelta) or value.within <= timedelta(0):
            raise ValidationError("trigger 'points_expiring' needs within=timedelta(days=7) (a positive duration)")
        return value
    cls = getattr(events_module, value.event, None)
    if not (isinstance(cls, type) and issubclass(cls, Event)) or not hasattr(cls, "__attrs_attrs__"):
        raise ValidationError(
            f"trigger event {value.event!r} is not an event class in siyu.events; use e.g. 'UserCreated', "
            "'TagApplied', or 'points_expiring'"
        )
    fields = {a.name for a in attrs.fields(cls)}
    if "user_id" not in fields:
        raise ValidationError(f"trigger event {value.event!r} has no user_id, so it cannot address a user")
    unknown = set(value.where) - fields
    if unknown:
        raise ValidationError(f"trigger where= names {sorted(unknown)}; {value.event} has {sorted(fields)}")
    return value


def _config(
    sched: Schedule | None, throttle: int | None, trigger: Trigger | None, params: tuple[str, ...] | None,
    quiet_hours: object,
) -> dict[str, Any]:
    own = quiet_hours is not ...
    parsed = QuietHours.parse(quiet_hours) if own else None
    return dump_config(CampaignConfig(
        schedule=None if sched is None else ScheduleSpec(start_at=sched.start_at, rrule=sched.rule),
        throttle=throttle,
        trigger=None if trigger is None else TriggerSpec.of(trigger),
        params=params,
        seed=random.SystemRandom().randrange(2**31),
        own_quiet_hours=own,
        quiet_hours=None if parsed is None else (parsed.as_list()[0], parsed.as_list()[1]),
    ))
