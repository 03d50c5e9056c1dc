"""Staff (导购 / 客服) and their customers: members, per-(staff, customer) relations,
ownership and transfers. ``ws.staff`` is :class:`Staff`; ``ws.staff.transfers`` is
:class:`Transfers`; :mod:`siyu.staff.wecom` talks to WeCom."""

from .models import (
    Follow,
    OwnerChange,
    OwnerRule,
    Relation,
    RelationStatus,
    SopRule,
    StaffMember,
    StaffStatus,
    Task,
    TaskStatus,
    Transfer,
    TransferStatus,
    Unfollow,
)
from .service import Staff
from .tasks import Tasks
from .transfers import Transfers

__all__ = [
    "Follow",
    "OwnerChange",
    "OwnerRule",
    "Relation",
    "RelationStatus",
    "SopRule",
    "Staff",
    "StaffMember",
    "StaffStatus",
    "Task",
    "TaskStatus",
    "Tasks",
    "Transfer",
    "TransferStatus",
    "Transfers",
    "Unfollow",
]
