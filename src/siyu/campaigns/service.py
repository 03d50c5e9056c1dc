"""``ws.campaigns``: audience x channel x template x variants, gated, A/B tested,
delivered exactly once."""

from __future__ import annotations

import builtins
import json
import logging
import random
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

import attrs
from pyroaring import BitMap, FrozenBitMap

from .._clock import aware
from ..channels.base import Channel
from ..errors import (
    AlreadyDecided,
    Conflict,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from ..events import (
    CampaignCreated,
    CampaignDecided,
    CampaignLaunched,
    ConversionAttributed,
    Event,
)
from ..services._common import MAX_ID, check_int, check_text, check_user_id, require_user
from ..storage.contracts.campaigns import CampaignRow, DeliveryRow, NewDelivery
from . import platform_caps
from .ab import judge
from .automation import Automation, _trigger_from
from .delivery import Runner
from .gates import QuietHours, budget_rules, medium_of
from .models import (
    Campaign,
    Decision,
    Delivery,
    Results,
    RunReport,
    Trigger,
    VariantResult,
)
from .preview import Previews
from .receipts import Receipts
from .reconcile import RECONCILING
from .records import Stored, find, save, stored
from .resolve import Resolutions
from .schedule import Schedule
from .state import CampaignState, Decided, HoldoutInfo, Launch, Phase, PilotInfo, check_transition, dump_state
from .state import CampaignStatus as S
from .stats import wilson_interval
from .templates import Renderer

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..storage.base import Transaction
    from ..storage.holders import Holders

__all__ = ["Campaigns", "GateConfig"]

log = logging.getLogger("siyu.campaigns")

DEFAULTS: dict[str, Any] = {
    "budget": {"day": 1, "week": 3},
    "quiet_hours": ["21:00", "08:00"],
    "tz_attribute": "tz",
    "platform_caps": {},
}
PURPOSES = ("marketing", "transactional")
HOLDOUT = "holdout"


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


class _Observer:
    """The campaigns' event consumer (``siyu.campaigns``): attribution and triggers,
    one event per call."""

    def __init__(self, service: Campaigns) -> None:
        self.service = service

    def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            self.service._on_event(event)


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
        value = Trigger(**value)
    if not isinstance(value, Trigger):
        raise ValidationError(f"trigger must be a siyu.campaigns.Trigger or a dict, got {type(value).__name__}")
    if value.event == "points_expiring":
        if not isinstance(value.within, timedelta) or value.within <= timedelta(0):
            raise ValidationError("trigger 'points_expiring' needs within=timedelta(days=7) (a positive duration)")
        return value
    import siyu.events as events_module

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


def _trigger_config(trigger: Trigger | None) -> dict[str, Any] | None:
    if trigger is None:
        return None
    return {
        "event": trigger.event,
        "where": dict(trigger.where),
        "within_s": None if trigger.within is None else trigger.within.total_seconds(),
    }


class CampaignsMoved(TypedDict):
    """The campaigns part of a merge record: the delivery records moved to ``keep``."""

    moved: list[int]


class Campaigns(Previews, Receipts, Resolutions, Automation):
    """``ws.campaigns``: create, preview, pilot, decide, roll out, resume.

    See :doc:`/howto/ab-test-an-sms` for a walk-through and
    :mod:`siyu.campaigns.gates` / :mod:`siyu.campaigns.delivery` for the rules.
    """

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService, holders: Holders) -> None:
        self._uow = uow
        self._channels = channels
        self._holders = holders
        self._lock = threading.Lock()
        self._cache: tuple[float, builtins.list[Stored]] | None = None
        #: The event consumer: goal attribution and triggered sends.
        self.observer = _Observer(self)
        self._runs_after = weakref.WeakKeyDictionary()

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The workspace's campaign settings (budget, quiet hours, caps overrides, tz attribute)."""
        with self._uow.read() as tx:
            return self._settings(tx)

    def _settings(self, tx: Transaction) -> dict[str, Any]:
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
        for name in DEFAULTS:
            raw = tx.campaigns.setting(name)
            if raw is not None:
                out[name] = json.loads(raw)
        return out

    def configure(
        self,
        *,
        budget: Mapping[str, int | None] | None = None,
        quiet_hours: object = ...,
        platform_caps: Mapping[str, Any] | None = None,
        tz_attribute: str | None = None,
    ) -> dict[str, Any]:
        """Change workspace-wide campaign settings; returns them.

        ``budget``: marketing touches allowed per user across all channels,
        ``{"day": 1, "week": 3}`` (``"day"`` is the calendar day and
        ``"week"`` the last 7 calendar days in the business time zone;
        ``"month"`` and ``"rolling_24h"`` also work). ``quiet_hours``:
        ``("21:00", "08:00")`` or ``None``. ``platform_caps``: per medium
        overrides of :data:`siyu.campaigns.platform_caps.CAPS`, e.g.
        ``{"wecom": [{"key": "...", "period": "day", "limit": 1}]}``.
        ``tz_attribute``: the user attribute holding an IANA time zone.
        """
        values: dict[str, Any] = {}
        if budget is not None:
            budget_rules(budget)
            values["budget"] = dict(budget)
        if quiet_hours is not ...:
            parsed = QuietHours.parse(quiet_hours)
            values["quiet_hours"] = None if parsed is None else parsed.as_list()
        if platform_caps is not None:
            values["platform_caps"] = self._check_caps(platform_caps)
        if tz_attribute is not None:
            values["tz_attribute"] = check_text(tz_attribute, "tz_attribute", max_length=64)
        with self._uow.write() as tx:
            for name, value in values.items():
                tx.campaigns.set_setting(name, json.dumps(value, ensure_ascii=False))
            return self._settings(tx)

    @staticmethod
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

    # -- create -----------------------------------------------------------------------------
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
        """Create a campaign (nothing is sent yet).

        ``audience`` is a segment snapshot or an iterable of user ids (optional
        for triggered campaigns, where it restricts who may be reached); an id
        of a user that was never created raises :class:`~siyu.errors.NotFound`.
        ``channel`` is a registered channel name, configured through
        ``ws.channels`` or its environment variables. ``template`` is text
        with ``${var}`` placeholders, or the provider template code for SMS and
        mini-programs (then ``params`` names the variables it takes).
        ``variants`` maps a variant name to campaign data (template variables,
        optionally ``"template"``); default one variant ``"A"``. ``goal`` is
        ``"order"`` or the kind of a tracked event (``ws.events.track``);
        conversions are attributed to the last touch within
        ``attribution_window``. ``non_personalized=True`` (PIPL Art. 24)
        refuses templates that use user attributes. ``schedule`` is a start
        time or an rrule (see :mod:`siyu.campaigns.schedule`); ``throttle``
        the most messages per minute on this channel; ``trigger`` makes it
        event-triggered; ``quiet_hours`` overrides the workspace's.
        """
        cname = check_text(name, "name", max_length=100)
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
        trig = _trigger(trigger)
        bitmap = _audience(audience) if audience is not None else None
        if trig is None and (bitmap is None or not bitmap):
            raise ValidationError(
                f"campaign {cname!r} has an empty audience; take a snapshot with users in it "
                "(ws.segments.snapshot(name)) or pass user ids"
            )
        params_ = None if params is None else tuple(check_text(p, "param", max_length=64) for p in params)
        chan = self._channel(channel)
        renderer = Renderer(chan, template, clean, params=params_, purpose=purpose)
        if non_personalized and renderer.all_user_variables():
            raise ValidationError(
                f"non_personalized=True but the template uses user attributes {list(renderer.all_user_variables())}; "
                "use campaign data only (put the values in each variant)"
            )
        now = self._uow.now()
        sched = Schedule.parse(schedule, self._uow.tz, now)
        config: dict[str, Any] = {
            "schedule": None if sched is None else sched.to_config(),
            "throttle": throttle,
            "trigger": _trigger_config(trig),
            "params": None if params_ is None else list(params_),
            "seed": random.SystemRandom().randrange(2**31),
        }
        if quiet_hours is not ...:
            parsed = QuietHours.parse(quiet_hours)
            config["quiet_hours"] = None if parsed is None else parsed.as_list()
        status = S.ACTIVE if trig is not None else (S.SCHEDULED if sched is not None else S.DRAFT)
        state = CampaignState(next_run_at=None if sched is None else sched.first())
        row = CampaignRow(
            id=0, name=cname, channel=channel, consent_channel=chan.consent_channel or chan.name, template=template,
            variants=clean, goal=goal, attribution_us=int(attribution_window.total_seconds() * 1_000_000),
            purpose=purpose, non_personalized=non_personalized, status=status.value, config=config,
            audience=None if bitmap is None else bitmap.serialize(),
            audience_count=0 if bitmap is None else len(bitmap), created_at=now, state=dump_state(state),
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
            made = find(tx, cid)
        self._cache = None
        return self._model(made)

    def _channel(self, name: str) -> Channel:
        if not isinstance(name, str) or not name:
            raise ValidationError("channel must be a channel name such as 'outbox' or 'sms_aliyun'")
        self._channels.cls(name)  # UnknownChannelError with a did-you-mean
        # The workspace's one configured instance; the claim step has already checked
        # consent for the whole batch, so its per-message check is skipped.
        return self._channels._unchecked(name)

    # -- read ---------------------------------------------------------------------------------
    def _row(self, tx: Transaction, campaign: int | str) -> CampaignRow:
        return find(tx, campaign).row

    def get(self, campaign: int | str) -> Campaign:
        """A campaign by id or name."""
        with self._uow.read() as tx:
            return self._model(find(tx, campaign))

    def list(self) -> builtins.list[Campaign]:
        """Every campaign, oldest first."""
        with self._uow.read() as tx:
            return [self._model(stored(r)) for r in tx.campaigns.all()]

    def _model(self, campaign: Stored) -> Campaign:
        row = campaign.row
        sched = row.config.get("schedule") or {}
        start = sched.get("start_at")
        return Campaign(
            id=row.id, name=row.name, channel=row.channel, template=row.template, variants=row.variants,
            goal=row.goal, attribution_window=timedelta(microseconds=row.attribution_us), purpose=row.purpose,
            non_personalized=row.non_personalized, status=campaign.status, audience_count=row.audience_count,
            created_at=row.created_at, schedule=sched.get("rrule"),
            start_at=datetime.fromisoformat(start) if start else None, throttle=row.config.get("throttle"),
            trigger=_trigger_from(row.config.get("trigger")), winner=campaign.state.winner,
        )

    def deliveries(
        self, campaign: int | str, *, status: str | None = None, user_id: int | None = None, limit: int = 1000,
        after_id: int = 0,
    ) -> builtins.list[Delivery]:
        """Delivery records: who got (or did not get) what, and why, by id."""
        with self._uow.read() as tx:
            row = self._row(tx, campaign)
            rows = tx.campaigns.deliveries(row.id, user_id=user_id, status=status, after_id=after_id, limit=limit)
            receipts = tx.campaigns.receipts([r.id for r in rows if r.status == "sent"])
        out = []
        for r in rows:
            d = _delivery(r)
            got = receipts.get(r.id)
            if got is not None:
                d = attrs.evolve(d, receipt=got.status, receipt_code=got.code, receipt_at=got.reported_at)
            out.append(d)
        return out

    # -- gates ------------------------------------------------------------------------------------
    def _gates(self, tx: Transaction, row: CampaignRow) -> GateConfig:
        settings = self._settings(tx)
        medium = row.consent_channel
        caps = list(platform_caps.CAPS.get(medium, ()))
        overrides = settings.get("platform_caps") or {}
        if medium in overrides:
            caps = list(overrides[medium])
        quiet_raw = row.config["quiet_hours"] if "quiet_hours" in row.config else settings["quiet_hours"]
        marketing = row.purpose == "marketing"
        return GateConfig(
            needs_consent=row.purpose != "transactional",
            counts_toward_budget=marketing,
            budget=budget_rules(settings["budget"]) if marketing else (),
            caps=tuple(c for c in caps if c.get("period")) if marketing else (),
            credits=any(c.get("kind") == "credits" for c in caps),
            # Transactional notices (order shipped ...) are not held back by quiet hours.
            quiet=QuietHours.parse(quiet_raw) if marketing else None,
            tz_attribute=str(settings["tz_attribute"]),
            throttle=row.config.get("throttle"),
        )

    def _renderer(self, row: CampaignRow, channel: Channel) -> Renderer:
        params = row.config.get("params")
        return Renderer(channel, row.template, row.variants, params=params, purpose=row.purpose)

    @staticmethod
    def _stored_audience(row: CampaignRow) -> BitMap | None:
        return None if row.audience is None else BitMap.deserialize(row.audience)

    def _rest_audience(self, tx: Transaction, campaign: Stored) -> BitMap | None:
        """Who a send, roll-out or recurring round may reach: the audience less the
        pilot's holdout. A one-off round skips them anyway (they have a record for
        it), but each recurring round is a new occurrence where they have none."""
        audience = self._stored_audience(campaign.row)
        state = campaign.state
        if audience is None or not ((state.pilot is not None and state.pilot.holdout) or state.holdout is not None):
            return audience
        return audience - self._holdout_users(tx, campaign.id)

    @staticmethod
    def _holdout_users(tx: Transaction, campaign_id: int) -> BitMap:
        out, after = BitMap(), 0
        while True:
            page = tx.campaigns.deliveries(campaign_id, status=HOLDOUT, after_id=after, limit=10_000)
            out.update(d.user_id for d in page)
            if len(page) < 10_000:
                return out
            after = page[-1].id

    # -- pilot ---------------------------------------------------------------------------------------
    def pilot(
        self, campaign: int | str, *, fraction: float = 0.05, seed: int | None = None, holdout: bool = True,
        send: bool = True,
    ) -> RunReport:
        """Send the variants to a random ``fraction`` of the audience.

        The pilot users are drawn with ``random.Random(seed)`` (the campaign's
        stored seed when ``seed`` is None), so the split is reproducible, and
        dealt round-robin to the variants and (with ``holdout=True``) a holdout
        group that gets nothing but whose conversions are counted as the
        baseline. With ``send=False`` the users are assigned but nothing goes
        out until :meth:`resume` / :meth:`run_due`.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ValidationError(f"pilot fraction must be between 0 and 1 (exclusive), e.g. 0.05; got {fraction!r}")
        if seed is not None:
            check_int(seed, "seed")
        now = self._uow.now()
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            if row.config.get("trigger"):
                raise ValidationError("a triggered campaign assigns variants per event; it has no pilot")
            if current.state.pilot is not None:
                raise Conflict(f"campaign {row.name!r} already ran its pilot; see ws.campaigns.results({row.id})")
            check_transition(current.status, S.PILOTING, campaign=row.name, campaign_id=row.id)
            if current.status not in (S.DRAFT, S.SCHEDULED) or current.state.launch is not None:
                # An armed scheduled send has its audience (and holdout) already.
                done = current.state.launch
                raise InvalidTransition(
                    f"campaign {row.name!r} "
                    + (f"is {current.status}" if done is None else f"was already launched ({done.phase})")
                    + "; a pilot must come before any send",
                    status=current.status, to=S.PILOTING,
                )
            audience = self._stored_audience(row)
            assert audience is not None
            used_seed = row.config.get("seed", 0) if seed is None else seed
            groups = [*row.variants, *([HOLDOUT] if holdout else [])]
            size = round(len(audience) * fraction)
            if size < len(groups):
                raise ValidationError(
                    f"a {fraction:.1%} pilot of {len(audience):,} users is {size} users, fewer than the "
                    f"{len(groups)} groups {groups}; raise the fraction"
                )
            rng = random.Random(used_seed)
            picked = rng.sample(list(audience), size)
            rows = []
            for index, uid in enumerate(picked):
                group = groups[index % len(groups)]
                if group == HOLDOUT:
                    rows.append(NewDelivery(user_id=uid, variant=HOLDOUT, phase="pilot", status="holdout",
                                            claimed_at=now, reason="holdout"))
                else:
                    rows.append(NewDelivery(user_id=uid, variant=group, phase="pilot", status="queued", due_at=now))
            rows.sort(key=lambda r: r.user_id)
            tx.campaigns.add_deliveries(row.id, row.consent_channel, row.purpose, rows, now)
            pilot = PilotInfo(fraction=fraction, seed=used_seed, users=size, holdout=holdout, at=now)
            save(tx, current, status=S.PILOTING, state=attrs.evolve(current.state, pilot=pilot, phase=Phase.PILOT))
            tx.emit(CampaignLaunched(at=now, campaign_id=row.id, phase="pilot", occurrence="", users=size))
        if not send:
            return RunReport(campaign_id=row.id)
        return self._run(row.id)

    # -- results and decisions -------------------------------------------------------------------------
    def results(self, campaign: int | str, *, phase: str | None = "pilot") -> Results:
        """Per variant (and holdout): assigned, sent, delivered (accepted by the
        channel), confirmed / receipt_failed (what provider receipts said since,
        see :meth:`record_receipts`), skipped, failed, conversions, rate and its
        95% Wilson interval. ``phase=None`` counts every phase (pilot and
        roll-out) together."""
        with self._uow.read() as tx:
            row = self._row(tx, campaign)
            counts = tx.campaigns.counts(row.id, phase)
            conversions = tx.campaigns.conversions(row.id, phase)
            reasons = tx.campaigns.reasons(row.id)
            receipts = tx.campaigns.receipt_counts(row.id, phase)
        names = [*row.variants, *([HOLDOUT] if any(v == HOLDOUT for v, _ in counts) else [])]
        out: dict[str, VariantResult] = {}
        for name in names:
            by_status = {s: n for (v, s), n in counts.items() if v == name}
            assigned = sum(by_status.values())
            sent = by_status.get("sent", 0) + by_status.get("undelivered", 0)
            conv, value = conversions.get(name, (0, 0))
            exposed = assigned if name == HOLDOUT else sent
            rate = conv / exposed if exposed else 0.0
            out[name] = VariantResult(
                variant=name, assigned=assigned, sent=sent, delivered=by_status.get("sent", 0),
                skipped=by_status.get("skipped", 0),
                failed=sum(by_status.get(s, 0) for s in ("failed", "rejected", "unavailable")),
                unknown=by_status.get("unknown", 0),
                conversions=conv, value_fen=value, rate=rate, interval=wilson_interval(conv, exposed),
                confirmed=receipts.get((name, "delivered"), 0), receipt_failed=receipts.get((name, "failed"), 0),
            )
        return Results(campaign_id=row.id, phase=phase, variants=out, skipped=reasons, at=self._uow.now())

    def decide(
        self,
        campaign: int | str,
        *,
        method: str = "z-test",
        alpha: float = 0.05,
        min_sample: int = 100,
        threshold: float = 0.95,
    ) -> Decision:
        """Pick the pilot's winner, or say it is not yet significant.

        ``method="z-test"``: the best variant must beat every other one with a
        two-sided pooled two-proportion z-test at ``alpha`` (Bonferroni-divided
        over the comparisons). ``method="bayes"``: the best variant's posterior
        probability of being best (Beta(1, 1) prior, seeded Monte Carlo) must
        reach ``threshold``. Each variant needs ``min_sample`` sent messages;
        below that nothing is decided. Once a winner is recorded, deciding
        again raises :class:`~siyu.errors.AlreadyDecided`; a "not yet
        significant" answer records nothing, so call again with more data.
        """
        if method not in ("z-test", "bayes"):
            raise ValidationError(f"method must be 'z-test' or 'bayes', got {method!r}")
        if not 0 < alpha < 1 or not 0.5 <= threshold < 1:
            raise ValidationError("alpha must be in (0, 1) and threshold in [0.5, 1)")
        check_int(min_sample, "min_sample", minimum=1)
        with self._uow.read() as tx:
            current = find(tx, campaign)
        row = current.row
        if current.state.winner is not None:
            raise AlreadyDecided(
                f"campaign {row.name!r} already decided: winner {current.state.winner!r}; "
                f"roll it out with ws.campaigns.rollout({row.id})"
            )
        if current.state.pilot is None:
            raise ValidationError(f"campaign {row.name!r} has no pilot yet; run ws.campaigns.pilot({row.id}) first")
        res = self.results(row.id, phase="pilot")
        arms = {v: (r.conversions, r.sent) for v, r in res.variants.items() if v != HOLDOUT}
        now = self._uow.now()
        decision = judge(
            row.id, arms, method=method, alpha=alpha, min_sample=min_sample, threshold=threshold,
            seed=int(row.config.get("seed", 0)), now=now,
        )
        if decision.winner is None:
            return decision
        with self._uow.write() as tx:
            fresh = find(tx, row.id)
            if fresh.state.winner is not None:
                raise AlreadyDecided(f"campaign {row.name!r} was decided meanwhile: {fresh.state.winner!r}")
            state = attrs.evolve(fresh.state, winner=decision.winner,
                                 decision=Decided(test=decision.test, reason=decision.reason, at=now))
            # Only a pilot waiting for its results becomes decided; a send under way goes on.
            status = S.DECIDED if fresh.underlying is S.PILOTING else fresh.underlying
            save(tx, fresh, status=status, state=state, under_pause=True)
            tx.emit(CampaignDecided(at=now, campaign_id=row.id, winner=decision.winner, test=decision.test))
        return decision

    # -- sending ------------------------------------------------------------------------------------------
    def rollout(self, campaign: int | str, *, variant: str | None = None, batch: int = 5_000) -> RunReport:
        """Send the winner (or ``variant``) to everyone in the audience who was not in
        the pilot (holdout included: they stay untouched). ``batch`` is how many
        records one claim transaction takes."""
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            chosen = variant or current.state.winner
            if chosen is None:
                if len(row.variants) == 1:
                    chosen = next(iter(row.variants))
                else:
                    raise ValidationError(
                        f"campaign {row.name!r} has no winner yet; call ws.campaigns.decide({row.id}) or pass variant="
                    )
            self._launch(tx, current, chosen, Phase.ROLLOUT)
        return self._run(row.id, batch=batch)

    def send(
        self, campaign: int | str, *, variant: str | None = None, batch: int = 5_000, holdout: float = 0.0,
        seed: int | None = None,
    ) -> RunReport:
        """Send a single-variant campaign (or one ``variant``) to the whole audience, without a pilot.
        A scheduled campaign is armed instead and goes out at its start time (:meth:`run_due`).

        ``holdout=0.1`` first sets aside a random 10% of the audience (drawn with
        ``random.Random(seed)``, the campaign's stored seed by default) that gets
        nothing, in this send and in every later round of a recurring campaign;
        ``results(id, phase="send")`` compares the variant with them (lift)."""
        if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 1:
            raise ValidationError(f"holdout must be a fraction in [0, 1), e.g. 0.1; got {holdout!r}")
        if seed is not None:
            check_int(seed, "seed")
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            if variant is None:
                if len(row.variants) > 1:
                    raise ValidationError(
                        f"campaign {row.name!r} has variants {list(row.variants)}; pilot them "
                        f"(ws.campaigns.pilot) or pass variant="
                    )
                variant = next(iter(row.variants))
            self._launch(tx, current, variant, Phase.SEND, holdout=holdout, seed=seed)
        return self._run(row.id, batch=batch)

    def _launch(
        self, tx: Transaction, current: Stored, variant: str, phase: Phase, *, holdout: float = 0.0,
        seed: int | None = None,
    ) -> None:
        row = current.row
        if variant not in row.variants:
            raise ValidationError(f"campaign {row.name!r} has no variant {variant!r}; it has {list(row.variants)}")
        if row.config.get("trigger"):
            raise ValidationError("a triggered campaign sends when its event happens; it cannot be sent by hand")
        if current.state.launch is not None:
            raise Conflict(
                f"campaign {row.name!r} was already launched ({current.state.launch.phase}); "
                f"continue it with ws.campaigns.resume({row.id})"
            )
        now = self._uow.now()
        sched = Schedule.from_config(row.config.get("schedule"), self._uow.tz)
        launch = Launch(variant=variant, phase=phase, occurrence="")
        status = S.RUNNING
        if sched is not None:
            status = S.SCHEDULED
            if sched.recurring:
                # Each occurrence opens its own round (run_due); until then nothing is open.
                status = S.ACTIVE
                launch = Launch(variant=variant, phase=phase, occurrence=None)
        check_transition(current.underlying, status, campaign=row.name, campaign_id=row.id)
        state = attrs.evolve(current.state, launch=launch, phase=phase, armed=sched is not None)
        if holdout:
            state = attrs.evolve(state, holdout=self._hold_out(tx, row, phase, holdout, seed, now))
        save(tx, current, status=status, state=state, under_pause=True)
        audience = self._stored_audience(row)
        tx.emit(CampaignLaunched(at=now, campaign_id=row.id, phase=phase.value, occurrence="",
                                 users=0 if audience is None else len(audience)))

    def _hold_out(
        self, tx: Transaction, row: CampaignRow, phase: Phase, fraction: float, seed: int | None, now: datetime
    ) -> HoldoutInfo:
        pool = (self._stored_audience(row) or BitMap()) - BitMap(tx.campaigns.existing_users(row.id, ""))
        size = round(len(pool) * fraction)
        if size < 1:
            raise ValidationError(
                f"a {fraction:.1%} holdout of {len(pool):,} users is no one; raise the fraction or drop holdout="
            )
        used_seed = row.config.get("seed", 0) if seed is None else seed
        picked = sorted(random.Random(used_seed).sample(list(pool), size))
        tx.campaigns.add_deliveries(row.id, row.consent_channel, row.purpose, [
            NewDelivery(user_id=uid, variant=HOLDOUT, phase=phase.value, status="holdout", claimed_at=now,
                        reason="holdout")
            for uid in picked
        ], now)
        return HoldoutInfo(fraction=fraction, seed=used_seed, users=size, at=now)

    def resume(
        self, campaign: int | str, *, recover_after: timedelta = timedelta(0), limit: int | None = None,
        batch: int = 5_000,
    ) -> RunReport:
        """Continue a campaign after a crash, a rate limit or a pause: take over
        the records whose sender is provably gone (its process died, or its run
        ended) and that it never completed, then send whatever is due (see
        :mod:`siyu.campaigns.delivery`). A live sender's records are left to it,
        so calling this while another process sends the same campaign is safe.
        ``recover_after`` additionally leaves alone records claimed less than that
        long ago. Never sends one user twice. ``done`` in the report says whether
        the campaign is finished (also when it already was)."""
        if not isinstance(recover_after, timedelta) or recover_after < timedelta(0):
            raise ValidationError("recover_after must be a timedelta >= 0")
        with self._uow.read() as tx:
            row = self._row(tx, campaign)
        return self._run(row.id, recover_after=recover_after, limit=limit, batch=batch)

    def cancel(self, campaign: int | str) -> Campaign:
        """Stop a campaign: nothing more is claimed (records already sent stay)."""
        with self._uow.write() as tx:
            cancelled = save(tx, find(tx, campaign), status=S.CANCELLED)
            tx.meta.bump("campaigns")
        self._cache = None
        return self._model(cancelled)

    def _run(
        self, campaign_id: int, *, recover_after: timedelta | None = timedelta(0), limit: int | None = None,
        batch: int = 5_000,
    ) -> RunReport:
        check_int(batch, "batch", minimum=1, maximum=100_000)
        now = self._uow.now()
        with self._uow.write() as tx:
            current = find(tx, campaign_id)
            row = current.row
            if current.status is S.CANCELLED:
                return RunReport(campaign_id=row.id, done=True)
            pause, start = current.state.pause, current.state.next_run_at
            if pause is not None and pause.until > now:
                return RunReport(campaign_id=row.id, paused_until=pause.until)
            if current.status is S.SCHEDULED and start is not None and start > now:
                return RunReport(campaign_id=row.id, paused_until=start)
            if pause is not None or current.status is S.PAUSED:
                # The pause is over: the campaign is again what the pause interrupted.
                current = save(tx, current, status=current.underlying, state=attrs.evolve(current.state, pause=None))
            cfg = self._gates(tx, row)
            launch = current.state.launch
            audience = None
            if launch is not None and launch.occurrence is not None:
                audience = self._rest_audience(tx, current)
        channel = self._channel(row.channel)
        runner = Runner(self, row, channel, self._renderer(row, channel), cfg, batch=batch)
        rest = None
        occurrence = ""
        if launch is not None and launch.occurrence is not None:
            occurrence = launch.occurrence
            if audience is not None:
                rest = (audience, launch.variant, launch.phase.value)
        totals = runner.run(occurrence=occurrence, rest=rest, recover_after=recover_after, limit=limit)
        return self._finish(row.id, totals)

    def _finish(self, campaign_id: int, totals: Mapping[str, Any]) -> RunReport:
        with self._uow.write() as tx:
            current = find(tx, campaign_id)
            pending = tx.campaigns.pending(current.id)
            due_at = [tx.campaigns.next_due(current.id), tx.campaigns.next_due(current.id, "unknown", RECONCILING)]
            next_due = min((d for d in due_at if d is not None), default=None)
            paused_until = totals.get("paused_until")
            done = current.status is S.DONE
            idle = not pending and next_due is None and not paused_until
            launch, state = current.state.launch, current.state
            if current.status in (S.RUNNING, S.PAUSED) and idle:
                if launch is not None and launch.occurrence is not None:
                    audience = self._rest_audience(tx, current)
                    todo = (audience or BitMap()) - BitMap(tx.campaigns.existing_users(current.id, launch.occurrence))
                    if not todo:
                        save(tx, current, status=S.DONE)
                        done = True
                elif launch is None and state.phase is Phase.PILOT:
                    save(tx, current, status=S.PILOTING if state.winner is None else S.DECIDED)
                elif current.row.config.get("trigger") and current.status is S.RUNNING:
                    # Left running by a pause of an earlier siyu: listen for the trigger again.
                    save(tx, current, status=S.ACTIVE)
            elif next_due is not None and paused_until is None and current.status not in (S.ACTIVE, S.CANCELLED):
                paused_until = next_due
        return RunReport(
            campaign_id=campaign_id, claimed=totals["claimed"], sent=totals["sent"], failed=totals["failed"],
            skipped=totals["skipped"], deferred=totals["deferred"], unknown=totals["unknown"],
            retried=totals["retried"], reconciled=totals["reconciled"], paused_until=paused_until, done=done,
            skipped_by=dict(totals["skipped_by"]),
        )

    def convert(
        self, user_id: int, goal: str, *, at: datetime | None = None, ref: str | None = None, value_fen: int = 0
    ) -> Delivery | None:
        """Attribute a goal to the user's last campaign touch within its window.

        Orders (``OrderRecorded``) and tracked events (``EventTracked``) are
        attributed automatically; call this for goals siyu does not see.
        Returns the delivery credited (``None`` if no touch qualifies). Each
        delivery converts at most once.
        """
        uid = check_user_id(user_id)
        check_text(goal, "goal", max_length=64)
        if ref is not None:
            check_text(ref, "ref", max_length=200)
        value = check_int(value_fen, "value_fen", minimum=0, maximum=MAX_ID)
        when = self._uow.now() if at is None else aware(at, "at")
        with self._uow.write() as tx:
            require_user(tx, uid)
            touch = tx.campaigns.last_touch(uid, when, goal)
            if touch is None:
                return None
            if tx.campaigns.add_conversion(touch, goal, ref, value, when):
                tx.emit(ConversionAttributed(at=when, campaign_id=touch.campaign_id, delivery_id=touch.id,
                                             user_id=uid, variant=touch.variant, goal=goal, ref=ref))
        return _delivery(touch)

    # -- suppression ---------------------------------------------------------------------------------------------
    def suppress(self, user_id: int, *, channel: str = "*", reason: str = "opt_out") -> None:
        """Put a user on the campaign suppression list for a medium (``"sms"``,
        ``"wecom"`` ...) or ``"*"`` (all). Campaigns skip them (reason ``suppressed``).
        A channel name (``"sms_aliyun"``) stands for its medium (``"sms"``)."""
        uid = check_user_id(user_id)
        medium = self._medium(check_text(channel, "channel", max_length=64))
        check_text(reason, "reason", max_length=128)
        with self._uow.write() as tx:
            require_user(tx, uid)
            tx.campaigns.suppress(uid, medium, reason, self._uow.now())

    def unsuppress(self, user_id: int, *, channel: str = "*") -> bool:
        """Take a user off the suppression list; ``False`` if they were not on it."""
        uid = check_user_id(user_id)
        name = check_text(channel, "channel", max_length=64)
        medium = self._medium(name)
        with self._uow.write() as tx:
            removed = tx.campaigns.unsuppress(uid, medium)
            # An entry an older siyu filed under the channel's own name goes too.
            return (tx.campaigns.unsuppress(uid, name) if name != medium else False) or removed

    def _medium(self, channel: str) -> str:
        # Gates match the list on the medium; an entry under a channel's own name
        # ("sms_aliyun") would never match and the user would still be messaged.
        return medium_of(self._channels, channel)

    # -- merges ---------------------------------------------------------------------------------------------------
    name = "campaigns"

    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> CampaignsMoved:
        """Merge participant: ``drop``'s delivery records move to ``keep`` (so its
        touches count against ``keep``'s budget and its conversions follow),
        except where ``keep`` already has a record for the same campaign round."""
        return CampaignsMoved(moved=tx.campaigns.move_user(drop, keep))

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: CampaignsMoved, at: datetime) -> None:
        tx.campaigns.restore_user(list(record.get("moved", [])), drop)


def _delivery(r: DeliveryRow) -> Delivery:
    return Delivery.of(r)
