"""A stored campaign with its status and state typed: the one place campaigns are
read from storage and the one place their status and state are written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..errors import NotFound, StorageError
from ..services._common import check_int
from .state import CampaignState, CampaignStatus, check_transition, dump_state, load_state

if TYPE_CHECKING:
    from ..storage.base import Transaction
    from ..storage.contracts.campaigns import CampaignRow

__all__ = ["Stored", "find", "save", "stored"]


@attrs.frozen(kw_only=True)
class Stored:
    """A campaign as stored: its definition (``row``), status and state."""

    row: CampaignRow
    status: CampaignStatus
    state: CampaignState

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
    return Stored(row=row, status=status, state=load_state(row.state))


def find(tx: Transaction, campaign: int | str) -> Stored:
    """A campaign by id or name, or :class:`~siyu.errors.NotFound`."""
    if isinstance(campaign, str):
        row = tx.campaigns.by_name(campaign)
    else:
        row = tx.campaigns.get(check_int(campaign, "campaign_id", minimum=1))
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
