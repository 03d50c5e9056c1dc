"""A stored campaign with its status and state typed: the one place campaigns are
read from storage and the one place their status and state are written; and the
API models built from stored rows."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
from pyroaring import BitMap

from ..channels.base import Purpose
from ..errors import NotFound, StorageError
from ..services._common import check_int
from .config import CampaignConfig, load_config
from .models import Campaign
from .state import CampaignState, CampaignStatus, check_transition, dump_state, load_state

if TYPE_CHECKING:
    from ..storage.base import Transaction
    from ..storage.contracts.campaigns import CampaignRow

__all__ = [
    "HOLDOUT",
    "Stored",
    "audience_of",
    "find",
    "holdout_users",
    "rest_audience",
    "save",
    "stored",
    "to_model",
]

#: The variant of the users set aside to get nothing.
HOLDOUT = "holdout"


@attrs.frozen(kw_only=True)
class Stored:
    """A campaign as stored: its definition (``row``), status and state."""

    row: CampaignRow
    status: CampaignStatus
    state: CampaignState
    config: CampaignConfig

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def underlying(self) -> CampaignStatus:
        """The status under a pause (the one it gives back), else the status."""
        if self.status is CampaignStatus.PAUSED and self.state.pause is not None:
            return self.state.resumes_to()
        return self.status


def stored(row: CampaignRow) -> Stored:
    """Type a storage row's status and state."""
    try:
        status = CampaignStatus(row.status)
    except ValueError:
        raise StorageError(
            f"campaign {row.name!r} has status {row.status!r}, which this siyu does not know; "
            "it was changed outside siyu or by a newer version"
        ) from None
    return Stored(row=row, status=status, state=load_state(row.state), config=load_config(row.config))


def find(tx: Transaction, campaign: int | str) -> Stored:
    """A campaign by id or name, or :class:`~siyu.errors.NotFound`.

    Inside a write the campaign is held until the transaction ends (``tx.serialize``):
    its status, state and delivery cursor are read, checked and written back, and two
    processes doing that at once (a send and a cancel, two senders) must take turns."""
    if isinstance(campaign, str):
        row = tx.campaigns.by_name(campaign)
    else:
        row = tx.campaigns.get(check_int(campaign, "campaign_id", minimum=1))
    if row is not None and tx.write:
        tx.serialize("campaign", [row.id])
        row = tx.campaigns.get(row.id)  # as the writer before us left it
    if row is None:
        raise NotFound(f"no campaign {campaign!r}; list them with ws.campaigns.list()")
    return stored(row)


def save(
    tx: Transaction, campaign: Stored, *, status: CampaignStatus | None = None, state: CampaignState | None = None,
    under_pause: bool = False,
) -> Stored:
    """Write a new status and/or state, after checking the status change against
    :data:`~siyu.campaigns.state.TRANSITIONS`. Leaving ``paused`` ends the pause.

    ``under_pause=True``: the change is to the status under a pause (a launch, a
    decision, a new round while paused): the campaign stays paused and takes
    ``status`` when the pause ends."""
    to = campaign.status if status is None else status
    new = campaign.state if state is None else state
    if under_pause and campaign.status is CampaignStatus.PAUSED and new.pause is not None:
        check_transition(campaign.underlying, to, campaign=campaign.name, campaign_id=campaign.id)
        new = attrs.evolve(new, pause=attrs.evolve(new.pause, resume_to=to))
        to = CampaignStatus.PAUSED
    check_transition(campaign.status, to, campaign=campaign.name, campaign_id=campaign.id)
    if campaign.status is CampaignStatus.PAUSED and to is not CampaignStatus.PAUSED:
        new = attrs.evolve(new, pause=None)
    tx.campaigns.update(
        campaign.id,
        status=None if to is campaign.status else to.value,
        state=None if new == campaign.state else dump_state(new),
    )
    return attrs.evolve(campaign, status=to, state=new)


# -- audiences ----------------------------------------------------------------------------------------------------


def audience_of(row: CampaignRow) -> BitMap | None:
    """The audience snapshot stored with the campaign (``None``: everyone, for triggered campaigns)."""
    return None if row.audience is None else BitMap.deserialize(row.audience)


def rest_audience(tx: Transaction, campaign: Stored) -> BitMap | None:
    """Who a send, roll-out or recurring round may reach: the audience less the
    pilot's holdout. A one-off round skips them anyway (they have a record for
    it), but each recurring round is a new occurrence where they have none."""
    audience = audience_of(campaign.row)
    state = campaign.state
    if audience is None or not ((state.pilot is not None and state.pilot.holdout) or state.holdout is not None):
        return audience
    return audience - holdout_users(tx, campaign.id)


def holdout_users(tx: Transaction, campaign_id: int) -> BitMap:
    out, after = BitMap(), 0
    while True:
        page = tx.campaigns.deliveries(campaign_id, status=HOLDOUT, after_id=after, limit=10_000)
        out.update(d.user_id for d in page)
        if len(page) < 10_000:
            return out
        after = page[-1].id


# -- API models ---------------------------------------------------------------------------------------------------


def to_model(campaign: Stored) -> Campaign:
    row, config = campaign.row, campaign.config
    sched = config.schedule
    return Campaign(
        id=row.id, name=row.name, channel=row.channel, template=row.template, variants=row.variants,
        goal=row.goal, attribution_window=timedelta(microseconds=row.attribution_us), purpose=Purpose(row.purpose),
        non_personalized=row.non_personalized, status=campaign.status, audience_count=row.audience_count,
        created_at=row.created_at, schedule=None if sched is None else sched.rrule,
        start_at=None if sched is None else sched.start_at, throttle=config.throttle,
        trigger=config.trigger_model(), winner=campaign.state.winner,
    )
