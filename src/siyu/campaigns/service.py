"""``ws.campaigns``: audience x channel x template x variants, gated, A/B tested,
delivered exactly once.

:class:`Campaigns` is a thin front: each call goes to the collaborator that owns
it -- :class:`~siyu.campaigns.settings.CampaignSettings`,
:class:`~siyu.campaigns.catalog.CampaignCatalog` (definitions),
:class:`~siyu.campaigns.preview.CampaignPreview`,
:class:`~siyu.campaigns.experiment.Experiments` (pilot, results, decision),
:class:`~siyu.campaigns.runner.CampaignRunner` (send, roll-out, resume),
:class:`~siyu.campaigns.receipts.ReceiptRecorder`,
:class:`~siyu.campaigns.resolve.Resolver` (unknown outcomes a person settles),
:class:`~siyu.campaigns.attribution.Conversions`,
:class:`~siyu.campaigns.suppression.Suppressions` and
:class:`~siyu.campaigns.automation.TriggerAutomation` (schedules, triggers,
attribution from events). Status changes all go through
:mod:`siyu.campaigns.state`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from .attribution import Conversions
from .automation import TriggerAutomation
from .catalog import PURPOSES, CampaignCatalog
from .experiment import Experiments
from .models import Campaign, Decision, Delivery, Preview, ReceiptReport, Results, RunReport, Trigger
from .preview import CampaignPreview
from .receipts import ReceiptRecorder
from .records import HOLDOUT
from .resolve import Resolver
from .runner import CampaignRunner
from .settings import DEFAULTS, CampaignSettings, GateConfig
from .suppression import Suppressions
from .variables import UserVariables, VariableSource

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.receipts import Receipt
    from ..channels.service import ChannelService
    from ..storage.base import Transaction
    from ..storage.holders import Holders
    from .policy import ContactPolicy

__all__ = ["DEFAULTS", "HOLDOUT", "PURPOSES", "Campaigns", "CampaignsMoved", "GateConfig"]


class CampaignsMoved(TypedDict):
    """The campaigns part of a merge record: the delivery records moved to ``keep``."""

    moved: list[int]


class Campaigns:
    """``ws.campaigns``: create, preview, pilot, decide, roll out, resume.

    See :doc:`/howto/ab-test-an-sms` for a walk-through,
    :mod:`siyu.campaigns.gates` / :mod:`siyu.campaigns.delivery` for the rules and
    :mod:`siyu.campaigns.state` for the statuses.
    """

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService, policy: ContactPolicy, holders: Holders,
                 variables: Sequence[VariableSource] = ()) -> None:
        self._settings = CampaignSettings(uow)
        self._catalog = CampaignCatalog(uow, channels=channels)
        # Template variables other domains compute per user (``ws.recommendations``' ``rec_1_title``).
        computed = UserVariables(variables)
        self._preview = CampaignPreview(uow, channels=channels, policy=policy, variables=computed)
        self._runner = CampaignRunner(uow, channels=channels, policy=policy, holders=holders, variables=computed)
        self._experiments = Experiments(uow, runner=self._runner)
        self._receipts = ReceiptRecorder(uow)
        self._resolver = Resolver(uow)
        self._conversions = Conversions(uow)
        self._suppressions = Suppressions(uow, policy=policy)
        self._automation = TriggerAutomation(uow, runner=self._runner, conversions=self._conversions)
        #: The ``siyu_on_event`` plugin: attribution and triggers.
        self.observer = self._automation.observer

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The workspace's campaign settings (budget, quiet hours, caps overrides, tz attribute)."""
        return self._settings.settings()

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
        return self._settings.configure(
            budget=budget, quiet_hours=quiet_hours, platform_caps=platform_caps, tz_attribute=tz_attribute
        )

    # -- definitions ----------------------------------------------------------------------
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
        made = self._catalog.create(
            name, channel=channel, template=template, audience=audience, variants=variants, goal=goal,
            attribution_window=attribution_window, purpose=purpose, non_personalized=non_personalized,
            schedule=schedule, throttle=throttle, trigger=trigger, params=params, quiet_hours=quiet_hours,
        )
        self._automation.forget()
        return made

    def get(self, campaign: int | str) -> Campaign:
        """A campaign by id or name."""
        return self._catalog.get(campaign)

    def list(self) -> builtins.list[Campaign]:
        """Every campaign, oldest first."""
        return self._catalog.list()

    def deliveries(
        self, campaign: int | str, *, status: str | None = None, user_id: int | None = None, limit: int = 1000,
        after_id: int = 0,
    ) -> builtins.list[Delivery]:
        """Delivery records: who got (or did not get) what, and why, by id."""
        return self._catalog.deliveries(campaign, status=status, user_id=user_id, limit=limit, after_id=after_id)

    def cancel(self, campaign: int | str) -> Campaign:
        """Stop a campaign for good: nothing more is claimed (records already sent
        stay). Cancelling a cancelled campaign changes nothing."""
        cancelled = self._catalog.cancel(campaign)
        self._automation.forget()
        return cancelled

    # -- preview, pilot, decision ---------------------------------------------------------
    def preview(self, campaign: int | str, *, at: datetime | None = None, samples: int = 3) -> Preview:
        """Reach after each gate (counted over the whole audience with bitmaps)
        and ``samples`` renders per variant.

        Raises :class:`~siyu.errors.TemplateError` when a template variable has
        no value for some reachable users or a render exceeds the channel's
        length limit -- fix the template or the data before sending.
        """
        return self._preview.preview(campaign, at=at, samples=samples)

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
        return self._experiments.pilot(campaign, fraction=fraction, seed=seed, holdout=holdout, send=send)

    def results(self, campaign: int | str, *, phase: str | None = "pilot") -> Results:
        """Per variant (and holdout): assigned, sent, delivered (accepted by the
        channel), confirmed / receipt_failed (what provider receipts said since,
        see :meth:`record_receipts`), skipped, failed, conversions, rate and its
        95% Wilson interval. ``phase=None`` counts every phase (pilot and
        roll-out) together."""
        return self._experiments.results(campaign, phase=phase)

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
        return self._experiments.decide(
            campaign, method=method, alpha=alpha, min_sample=min_sample, threshold=threshold
        )

    # -- sending --------------------------------------------------------------------------
    def rollout(self, campaign: int | str, *, variant: str | None = None, batch: int = 5_000) -> RunReport:
        """Send the winner (or ``variant``) to everyone in the audience who was not in
        the pilot (holdout included: they stay untouched). ``batch`` is how many
        records one claim transaction takes."""
        return self._runner.rollout(campaign, variant=variant, batch=batch)

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
        return self._runner.send(campaign, variant=variant, batch=batch, holdout=holdout, seed=seed)

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
        return self._runner.resume(campaign, recover_after=recover_after, limit=limit, batch=batch)

    def run_due(self) -> builtins.list[RunReport]:
        """Send everything that is due now: scheduled and recurring campaigns whose
        time has come, campaigns whose pause or quiet hours ended, queued
        triggered messages, and ``points_expiring`` reminders. Call it from a
        scheduler (cron, a loop); it is safe to run in several processes."""
        return self._automation.run_due()

    # -- receipts, resolutions, conversions, suppression -----------------------------------------------
    def record_receipts(self, receipts: Iterable[Receipt]) -> ReceiptReport:
        """Record provider delivery receipts against the campaigns' delivery records
        (rules in :mod:`siyu.campaigns.receipts`), in one transaction.

        Returns what changed and the receipts that matched no record (unknown
        message id, ambiguous, other recipient): nothing is stored for those, so
        keep them and try again later if the send may not have completed yet.
        Emits :class:`~siyu.events.ReceiptsRecorded` per campaign and status.
        """
        return self._receipts.record(receipts)

    def convert(
        self, user_id: int, goal: str, *, at: datetime | None = None, ref: str | None = None, value_fen: int = 0
    ) -> Delivery | None:
        """Attribute a goal to the user's last campaign touch within its window.

        Orders (``OrderRecorded``) and tracked events (``EventTracked``) are
        attributed automatically; call this for goals siyu does not see.
        Returns the delivery credited (``None`` if no touch qualifies). Each
        delivery converts at most once.
        """
        return self._conversions.convert(user_id, goal, at=at, ref=ref, value_fen=value_fen)

    def resolve(
        self, campaign: int | str, deliveries: int | Iterable[int], *, sent: bool, note: str | None = None
    ) -> builtins.list[Delivery]:
        """Settle delivery records whose outcome is ``unknown``, by id
        (``ws.campaigns.deliveries(id, status="unknown")`` lists them).

        ``sent=True``: the provider has the message; the record becomes ``sent``
        (it counts in the results and can earn a conversion). ``sent=False``:
        it provably never left; the record goes back to ``queued`` and the next
        ``resume`` (or ``run_due``) sends it, through the gates again. ``note``
        (say how you know) is kept in the record's ``detail``. All records
        change or none: a record that is not ``unknown`` (or not in this
        campaign) is refused with :class:`~siyu.errors.Conflict` /
        :class:`~siyu.errors.NotFound`. Returns the records as they are now.
        """
        return self._resolver.resolve(campaign, deliveries, sent=sent, note=note)

    def suppress(self, user_id: int, *, channel: str = "*", reason: str = "opt_out") -> None:
        """Put a user on the campaign suppression list for a medium (``"sms"``,
        ``"wecom"`` ...) or ``"*"`` (all). Campaigns skip them (reason ``suppressed``).
        A channel name (``"sms_aliyun"``) stands for its medium (``"sms"``)."""
        self._suppressions.suppress(user_id, channel=channel, reason=reason)

    def unsuppress(self, user_id: int, *, channel: str = "*") -> bool:
        """Take a user off the suppression list; ``False`` if they were not on it."""
        return self._suppressions.unsuppress(user_id, channel=channel)

    # -- merges ----------------------------------------------------------------------
    name = "campaigns"

    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> CampaignsMoved:
        """Merge participant: ``drop``'s delivery records move to ``keep`` (so its
        touches count against ``keep``'s budget and its conversions follow),
        except where ``keep`` already has a record for the same campaign round."""
        return {"moved": tx.campaigns.move_user(drop, keep)}

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: CampaignsMoved, at: datetime) -> None:
        """Merge participant: the records a merge moved go back to ``drop``."""
        tx.campaigns.restore_user(list(record.get("moved", [])), drop)
