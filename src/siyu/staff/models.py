"""Staff members, their relations with customers, ownership and transfers (attrs values, no I/O)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

__all__ = [
    "Follow",
    "Unfollow",
    "OwnerChange",
    "OwnerRule",
    "Relation",
    "RelationStatus",
    "StaffMember",
    "SopRule",
    "StaffStatus",
    "Task",
    "TaskStatus",
    "Transfer",
    "TransferStatus",
]


class StaffStatus(enum.StrEnum):
    """Whether a staff member still works here."""

    ACTIVE = "active"
    RESIGNED = "resigned"


class RelationStatus(enum.StrEnum):
    """The state of one (staff member, customer) relation.

    Only ``active`` relations reach the customer; the others say how it ended:
    the customer deleted the staff member (WeCom ``del_follow_user``), the staff
    member deleted the customer (``del_external_contact``), or the customer was
    handed over to someone else (a transfer, not churn).
    """

    ACTIVE = "active"
    DELETED_BY_CUSTOMER = "deleted_by_customer"
    DELETED_BY_STAFF = "deleted_by_staff"
    TRANSFERRED = "transferred"


class OwnerRule(enum.StrEnum):
    """How a customer's owner (the 导购 credited with them) is chosen.

    ``first_adder``: the first staff member who added the customer keeps them;
    ``last_adder``: each new relation takes the customer over; ``manual``: only
    ``ws.staff.set_owner`` changes the owner. Under every rule a transfer moves
    ownership to the takeover member, and an owner whose relation ends hands the
    customer to the longest-standing remaining relation (``manual``: to nobody).
    """

    FIRST_ADDER = "first_adder"
    LAST_ADDER = "last_adder"
    MANUAL = "manual"


class TransferStatus(enum.StrEnum):
    """Where one customer's transfer stands.

    ``pending`` (WeCom takes over after 24 hours unless the customer refuses),
    ``done``; and the refusals: ``refused`` (the customer refused),
    ``cap_reached`` (the takeover member has too many customers),
    ``no_record`` (WeCom knows no such transfer), ``quota_exhausted`` (two
    transfers within 90 days already, WeCom 40128), ``in_transfer`` (already being
    transferred, 40129/40100), ``not_followed`` (the handover member does not
    follow the customer, 40131), ``not_resigned`` (a resigned-member transfer of
    someone still employed, 40097), ``failed`` (any other WeCom code, in ``errcode``).
    """

    PENDING = "pending"
    DONE = "done"
    REFUSED = "refused"
    CAP_REACHED = "cap_reached"
    NO_RECORD = "no_record"
    QUOTA_EXHAUSTED = "quota_exhausted"
    IN_TRANSFER = "in_transfer"
    NOT_FOLLOWED = "not_followed"
    NOT_RESIGNED = "not_resigned"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class StaffMember:
    """A staff member (导购 / 客服): ``userid`` is the WeCom member id (or any id a
    shop without WeCom chooses). ``role`` is data (``"guide"``, ``"store_manager"``,
    ``"admin"`` ...)."""

    userid: str
    name: str
    department: str | None = None
    store: str | None = None
    role: str = "guide"
    status: StaffStatus = StaffStatus.ACTIVE
    since: datetime
    resigned_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Relation:
    """One (staff member, customer) pair. ``remark``, ``description``, ``tags``,
    ``add_way`` (WeCom's source code: 1 QR code, 16 acquisition link ...; unknown
    values kept), ``state`` (the channel code of the QR code or link) and
    ``oper_userid`` belong to the pair, not to the customer. ``since`` is when
    this staff member added the customer; ``changed_at`` is the instant of the
    last change applied (older callbacks arriving late are ignored)."""

    user_id: int
    staff: str
    status: RelationStatus
    remark: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    add_way: int | None = None
    state: str | None = None
    oper_userid: str | None = None
    since: datetime
    changed_at: datetime
    ended_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status is RelationStatus.ACTIVE


@attrs.frozen(kw_only=True)
class Follow:
    """One "staff member ``staff`` added customer ``user_id``" for
    :meth:`siyu.staff.Staff.follow_many`; the fields mean what the arguments of
    :meth:`~siyu.staff.Staff.follow` mean (``None``: keep the stored value)."""

    user_id: int
    staff: str
    add_way: int | None = None
    state: str | None = None
    remark: str | None = None
    description: str | None = None
    tags: Iterable[str] | None = None
    oper_userid: str | None = None
    since: datetime | None = None
    at: datetime | None = None


@attrs.frozen(kw_only=True)
class Unfollow:
    """One ended relation for :meth:`siyu.staff.Staff.unfollow_many`; the fields mean
    what the arguments of :meth:`~siyu.staff.Staff.unfollow` mean."""

    user_id: int
    staff: str
    by: str
    at: datetime | None = None


@attrs.frozen(kw_only=True)
class OwnerChange:
    """A customer's owner changed to ``staff`` (``None``: nobody) at ``at``, for ``reason``."""

    user_id: int
    staff: str | None
    at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class Transfer:
    """One customer's transfer from ``from_staff`` to ``to_staff``.

    ``kind`` is ``"onjob"`` (在职转接), ``"resigned"`` (离职继承) or ``"local"``
    (no WeCom: done at once). ``takeover_at`` is when WeCom takes over (24 hours
    after the start) while pending. ``errcode`` is WeCom's code for a refusal;
    ``raw_status`` the last ``transfer_result`` status read (kept even if unknown).
    """

    id: int
    user_id: int
    from_staff: str
    to_staff: str
    kind: str
    status: TransferStatus
    started_at: datetime
    takeover_at: datetime | None = None
    finished_at: datetime | None = None
    errcode: int | None = None
    raw_status: int | None = None


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class Task:
    """A follow-up task for a staff member about one customer, made by an SOP rule
    (``rule``) or by hand (``rule="manual"``)."""

    id: int
    rule: str
    user_id: int
    staff: str
    title: str
    created_at: datetime
    due_at: datetime
    status: TaskStatus = TaskStatus.OPEN
    completed_at: datetime | None = None

    @property
    def on_time(self) -> bool:
        """Completed no later than it was due."""
        return self.completed_at is not None and self.completed_at <= self.due_at


@attrs.frozen(kw_only=True)
class SopRule:
    """A follow-up rule (SOP): when ``on`` happens, give the customer's staff member a task
    due ``due_hours`` later. ``on`` is ``"follow"`` (a staff member added the customer; the
    task goes to that member) or ``"stage:<stage>"`` (the lifecycle stage became ``<stage>``;
    the task goes to the owner). With ``repeat_hours``, completing the task makes the next
    one while the customer stays in that stage; leaving the stage cancels open ones."""

    name: str
    on: str
    title: str
    due_hours: float
    repeat_hours: float | None = None
    enabled: bool = True
