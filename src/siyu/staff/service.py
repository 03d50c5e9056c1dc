"""``ws.staff``: staff members, their relations with customers, and ownership.

A customer may be followed by several staff members; WeCom keeps one relation
per (member, customer) pair, with its own remark, tags, ``add_way`` and
``state``, and so does siyu. A relation ends when the customer deletes the
member, the member deletes the customer, or the customer is transferred; the
customer is *lost* (``lifecycle/lost``, left out of every campaign) only when
their last active relation ends other than by a transfer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

import attrs

from .._validation import check_int, check_many, check_text
from ..errors import NotFound, ValidationError
from ..events import CustomerFollowed, CustomerUnfollowed, OwnerChanged, StaffAdded, StaffResigned
from ..services._common import check_user_id, require_user, require_users
from .handover import HandOver, hand_over
from .models import (
    Follow,
    OwnerChange,
    OwnerRule,
    Relation,
    RelationStatus,
    StaffMember,
    StaffStatus,
    Transfer,
    Unfollow,
)

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..community.service import Groups
    from ..community.wecom import GroupApi
    from ..services.lifecycle import Lifecycle
    from ..storage.base import Transaction
    from .transfers import Transfers

__all__ = ["Staff", "StaffMerge"]

E = TypeVar("E", StaffStatus, OwnerRule)

_OWNER_RULE = "staff.owner_rule"
_RANK = {RelationStatus.ACTIVE: 0, RelationStatus.TRANSFERRED: 1, RelationStatus.DELETED_BY_STAFF: 2,
         RelationStatus.DELETED_BY_CUSTOMER: 3}
_ENDED_BY = {"customer": RelationStatus.DELETED_BY_CUSTOMER, "staff": RelationStatus.DELETED_BY_STAFF,
             "transfer": RelationStatus.TRANSFERRED}
#: WeCom's limits on the relation fields (externalcontact/remark): remark 20, description 150 characters.
MAX_REMARK = 20
MAX_DESCRIPTION = 150
MAX_STATE = 64  # an acquisition link's customer_channel (a contact way's state is <= 30)


class StaffMerge(TypedDict):
    """The staff part of a user merge record: relations and ownership moved to the kept user."""

    staff: list[str]
    owner: bool


def check_userid(value: object, name: str = "userid") -> str:
    """A WeCom member id: 1-64 characters."""
    return check_text(value, name, max_length=64)


class Staff:
    """``ws.staff``: who serves the customers.

    Members are added by hand (``add``) or synced from WeCom
    (:class:`siyu.staff.wecom.StaffSync`); relations come from WeCom callbacks and
    syncs, or from ``follow`` / ``unfollow`` in a shop without WeCom.
    """

    name = "staff"
    #: Transfers of customers between members (set by the workspace, which builds it after ``ws.users``).
    transfers: Transfers
    #: The groups a hand-over moves too (set by the workspace).
    groups: Groups | None = None

    def __init__(self, uow: UnitOfWork, *, lifecycle: Lifecycle) -> None:
        self._uow = uow
        self._lifecycle = lifecycle

    def writing(self) -> AbstractContextManager[object]:
        """One transaction around several calls (a sync writes a user and its relation together)."""
        return self._uow.write()

    # -- members ------------------------------------------------------------------------
    def add(
        self,
        userid: str,
        *,
        name: str | None = None,
        department: str | None = None,
        store: str | None = None,
        role: str | None = None,
    ) -> StaffMember:
        """Add a staff member, or update the details given of an existing one (a
        resigned member stays resigned). ``name`` defaults to the userid."""
        uid = check_userid(userid)
        fields: dict[str, Any] = {
            "name": None if name is None else check_text(name, "name", max_length=64),
            "department": None if department is None else check_text(department, "department", max_length=64),
            "store": None if store is None else check_text(store, "store", max_length=64),
            "role": None if role is None else check_text(role, "role", max_length=32),
        }
        now = self._uow.now()
        with self._uow.write() as tx:
            found = tx.staff.members([uid])
            if found:
                old = found[0]
                member = attrs.evolve(old, **{k: v for k, v in fields.items() if v is not None})
                changed = tuple(k for k in fields if getattr(member, k) != getattr(old, k))
                if not changed:
                    return old
            else:
                member = StaffMember(userid=uid, name=fields["name"] or uid, department=fields["department"],
                                     store=fields["store"], role=fields["role"] or "guide", since=now)
                changed = ("userid",)
            tx.staff.save_member(member)
            tx.emit(StaffAdded(at=now, userid=uid, changed=changed))
        return member

    def get(self, userid: str) -> StaffMember:
        """One staff member; :class:`~siyu.errors.NotFound` if unknown."""
        uid = check_userid(userid)
        with self._uow.read() as tx:
            return _require_member(tx, uid)

    def members(self, *, status: StaffStatus | str | None = None, store: str | None = None) -> list[StaffMember]:
        """Staff members by userid, optionally only those with ``status`` or in ``store``."""
        wanted = None if status is None else _enum(StaffStatus, status, "status")
        with self._uow.read() as tx:
            return [m for m in tx.staff.members()
                    if (wanted is None or m.status is wanted) and (store is None or m.store == store)]

    def resign(self, userid: str) -> StaffMember:
        """Mark a member resigned. Their relations stay until their customers are
        handed over (``transfer(..., resigned=True)``), as in WeCom."""
        uid = check_userid(userid)
        now = self._uow.now()
        with self._uow.write() as tx:
            member = _require_member(tx, uid)
            if member.status is StaffStatus.RESIGNED:
                return member
            member = attrs.evolve(member, status=StaffStatus.RESIGNED, resigned_at=now)
            tx.staff.save_member(member)
            tx.emit(StaffResigned(at=now, userid=uid))
        return member

    # -- relations ---------------------------------------------------------------------------
    def follow(
        self,
        user_id: int,
        userid: str,
        *,
        add_way: int | None = None,
        state: str | None = None,
        remark: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        oper_userid: str | None = None,
        since: datetime | None = None,
        at: datetime | None = None,
    ) -> Relation:
        """Record that staff member ``userid`` added customer ``user_id`` (WeCom
        ``add_external_contact``). Fields not given keep their stored values. An
        unknown member is added (named by the userid). ``since`` is when the member
        added the customer (default: ``at``); ``at`` is when this change happened
        (default: now); a change older than the relation's last one is ignored, so
        callbacks arriving late or twice converge."""
        return self.follow_many([Follow(
            user_id=user_id, staff=userid, add_way=add_way, state=state, remark=remark, description=description,
            tags=tags, oper_userid=oper_userid, since=since, at=at)])[0]

    def follow_many(self, follows: Sequence[Follow]) -> list[Relation]:
        """:meth:`follow` for many (customer, member) pairs in one transaction (a sync
        page); all or nothing. Returns each pair's relation afterwards, in order; a pair
        given twice is applied twice, in order."""
        items = list(check_many(follows, "follows", "[Follow(user_id=1, staff='zhangsan')]"))
        prepared = []
        for index, f in enumerate(items):
            if not isinstance(f, Follow):
                raise ValidationError(f"follows[{index}]: expected a siyu.staff.Follow, got {type(f).__name__}")
            prepared.append((check_user_id(f.user_id), check_userid(f.staff), self._when(f.at), f.at is not None,
                             _relation_fields(add_way=f.add_way, state=f.state, remark=f.remark,
                                              description=f.description, tags=f.tags, oper_userid=f.oper_userid),
                             None if f.since is None else self._when(f.since)))
        out: list[Relation] = []
        with self._uow.write() as tx:
            customers = {p[0] for p in prepared}
            require_users(tx, customers, lock=True)
            self._ensure_members(tx, {uid: when for _, uid, when, *_ in reversed(prepared)})
            current = {(r.user_id, r.staff): r for r in tx.staff.relations(customers)}
            owners: dict[int, str | None] = dict(tx.staff.owners(customers))
            rule = self._rule(tx)
            changed: dict[tuple[int, str], Relation] = {}
            owner_changes: list[OwnerChange] = []
            started: dict[int, datetime] = {}
            for customer, uid, when, explicit, values, since in prepared:
                old = current.get((customer, uid))
                # A late callback never undoes a newer change; between callbacks of the same
                # instant a deletion wins (whatever order they arrive in).
                if old is not None and (old.changed_at > when or (explicit and not old.active
                                                                  and old.changed_at == when)):
                    out.append(old)
                    continue
                if old is not None and old.active:
                    relation = attrs.evolve(old, changed_at=max(old.changed_at, when), **values)
                else:
                    relation = Relation(user_id=customer, staff=uid, status=RelationStatus.ACTIVE,
                                        since=when if since is None else since, changed_at=when,
                                        **{**_kept(old), **values})
                    tx.emit(CustomerFollowed(at=when, user_id=customer, staff=uid, add_way=relation.add_way,
                                             state=relation.state))
                    if rule is OwnerRule.LAST_ADDER or (rule is OwnerRule.FIRST_ADDER
                                                        and owners.get(customer) is None):
                        change = self._owner_change(tx, owners, customer, uid, when, f"rule:{rule}")
                        owner_changes.extend(change)
                    started[customer] = max(started.get(customer, when), when)
                current[(customer, uid)] = changed[(customer, uid)] = relation
                out.append(relation)
            tx.staff.save_relations(list(changed.values()))
            tx.staff.set_owners(owner_changes)
            if started or owner_changes:
                tx.meta.bump("staff")
            lost = [c for c, stage in self._lifecycle.stages(list(started)).items() if stage == "lost"]
            if lost:
                # The loss was recorded when it was processed: the recall counts from now too.
                now = self._uow.now()
                self._lifecycle.apply_activity(tx, {c: [("staff_follow", max(started[c], now))] for c in lost})
        return out

    def unfollow(
        self,
        user_id: int,
        userid: str,
        *,
        by: Literal["customer", "staff", "transfer"],
        at: datetime | None = None,
    ) -> Relation:
        """End the relation of staff member ``userid`` with customer ``user_id``.

        ``by="customer"``: the customer deleted the member (WeCom ``del_follow_user``);
        ``"staff"``: the member deleted the customer (``del_external_contact``);
        ``"transfer"``: the customer was handed over (``Source=DELETE_BY_TRANSFER``),
        which is not churn. The customer becomes lost only when no active relation is
        left and the end was not a transfer. A relation siyu did not know is recorded
        as ended (so a late ``follow`` older than this does not revive it)."""
        return self.unfollow_many([Unfollow(user_id=user_id, staff=userid, by=by, at=at)])[0]

    def unfollow_many(self, unfollows: Sequence[Unfollow]) -> list[Relation]:
        """:meth:`unfollow` for many (customer, member) pairs in one transaction (a backlog
        of callbacks); all or nothing. Returns each pair's relation afterwards, in order."""
        return [relation for relation, _ in self._unfollow_many(unfollows)]

    def _unfollow_many(self, unfollows: Sequence[Unfollow]) -> list[tuple[Relation, int]]:
        """Each relation afterwards and how many active relations its customer had left then."""
        prepared = []
        for index, u in enumerate(check_many(unfollows, "unfollows", "[Unfollow(user_id=1, staff='a', by='staff')]")):
            if not isinstance(u, Unfollow):
                raise ValidationError(f"unfollows[{index}]: expected a siyu.staff.Unfollow, got {type(u).__name__}")
            if not isinstance(u.by, str) or u.by not in _ENDED_BY:
                raise ValidationError(f"by must be 'customer', 'staff' or 'transfer', got {u.by!r}")
            prepared.append((check_user_id(u.user_id), check_userid(u.staff), u.by, self._when(u.at)))
        out: list[tuple[Relation, int]] = []
        with self._uow.write() as tx:
            customers = {p[0] for p in prepared}
            require_users(tx, customers, lock=True)
            self._ensure_members(tx, {uid: when for _, uid, _, when in reversed(prepared)})
            current: dict[int, dict[str, Relation]] = {}
            for r in tx.staff.relations(customers):
                current.setdefault(r.user_id, {})[r.staff] = r
            owners: dict[int, str | None] = dict(tx.staff.owners(customers))
            rule = self._rule(tx)
            changed: dict[tuple[int, str], Relation] = {}
            owner_changes: list[OwnerChange] = []
            lost: dict[int, str] = {}
            for customer, uid, by, when in prepared:
                pairs = current.setdefault(customer, {})
                old = pairs.get(uid)
                status = _ENDED_BY[by]
                # Newer changes win; at the same instant the stronger ending wins (whatever the arrival order).
                if old is not None and (old.changed_at, _RANK[old.status]) >= (when, _RANK[status]):
                    out.append((old, sum(r.active for r in pairs.values())))
                    continue
                ended_at = old.ended_at if old is not None and not old.active and old.ended_at else when
                relation = (attrs.evolve(old, status=status, changed_at=when, ended_at=ended_at) if old is not None
                            else Relation(user_id=customer, staff=uid, status=status, since=when, changed_at=when,
                                          ended_at=when))
                pairs[uid] = changed[(customer, uid)] = relation
                remaining = sorted((r for r in pairs.values() if r.active), key=lambda r: (r.since, r.staff))
                gone = not remaining and by != "transfer"
                tx.emit(CustomerUnfollowed(at=when, user_id=customer, staff=uid, by=by, lost=gone))
                if by != "transfer" and owners.get(customer) == uid:
                    heir = None if rule is OwnerRule.MANUAL or not remaining else remaining[0].staff
                    owner_changes += self._owner_change(tx, owners, customer, heir, when, f"relation ended:{uid}")
                if gone:
                    lost[customer] = f"{'del_follow_user' if by == 'customer' else 'del_external_contact'}:{uid}"
                out.append((relation, len(remaining)))
            tx.staff.save_relations(list(changed.values()))
            tx.staff.set_owners(owner_changes)
            if changed:
                tx.meta.bump("staff")
            self._lifecycle.mark_lost_many(lost)
        return out

    def relations(self, user_id: int, *, active: bool = False) -> list[Relation]:
        """The customer's relations, oldest first (only active ones with ``active=True``)."""
        with self._uow.read() as tx:
            customer = require_user(tx, user_id, active=False)
            return [r for r in tx.staff.relations([customer]) if r.active or not active]

    def relation_status(self, user_id: int, userid: str) -> RelationStatus | None:
        """The status of one (customer, staff member) relation, ``None`` if there never was one."""
        uid = check_userid(userid)
        with self._uow.read() as tx:
            found = tx.staff.relation(require_user(tx, user_id, active=False), uid)
            return None if found is None else found.status

    def customers(self, userid: str, *, active: bool = True) -> list[int]:
        """Customers of one staff member (with an active relation by default)."""
        uid = check_userid(userid)
        with self._uow.read() as tx:
            return tx.staff.customers_of(uid, active=active)

    # -- ownership ------------------------------------------------------------------------------
    def owner(self, user_id: int) -> str | None:
        """The staff member credited with the customer (导购), or ``None``."""
        with self._uow.read() as tx:
            customer = require_user(tx, user_id, active=False)
            return tx.staff.owners([customer]).get(customer)

    def owned(self, userid: str) -> list[int]:
        """Customers a staff member owns now."""
        uid = check_userid(userid)
        with self._uow.read() as tx:
            return tx.staff.owned_by(uid)

    def set_owner(self, user_id: int, userid: str | None, *, reason: str = "manual") -> None:
        """Make ``userid`` the customer's owner (``None``: nobody). The member must exist."""
        why = check_text(reason, "reason", max_length=100)
        uid = None if userid is None else check_userid(userid)
        now = self._uow.now()
        with self._uow.write() as tx:
            customer = require_user(tx, user_id, lock=True)
            if uid is not None:
                _require_member(tx, uid)
            self._set_owner(tx, customer, uid, now, why)

    def owner_history(self, user_id: int) -> list[OwnerChange]:
        """Every owner change of a customer, oldest first."""
        with self._uow.read() as tx:
            return tx.staff.owner_history(require_user(tx, user_id, active=False))

    def owner_at(self, user_id: int, at: datetime) -> str | None:
        """Who owned the customer at instant ``at`` (orders are credited to this member)."""
        owner = None
        for change in self.owner_history(user_id):
            if change.at > at:
                break
            owner = change.staff
        return owner

    @property
    def owner_rule(self) -> OwnerRule:
        """How owners are chosen (default ``first_adder``); see :class:`OwnerRule`."""
        with self._uow.read() as tx:
            return OwnerRule(tx.meta.get(_OWNER_RULE) or OwnerRule.FIRST_ADDER)

    def set_owner_rule(self, rule: OwnerRule | str) -> None:
        """Choose how owners are chosen from now on (existing owners stay)."""
        value = _enum(OwnerRule, rule, "rule")
        with self._uow.write() as tx:
            tx.meta.set(_OWNER_RULE, str(value))

    # -- transfers -------------------------------------------------------------------------
    def transfer(self, user_ids: Sequence[int], *, from_: str, to: str, resigned: bool = False,
                 message: str | None = None) -> list[Transfer]:
        """Hand customers from one member over to another; one result per customer
        (see :meth:`siyu.staff.Transfers.transfer`)."""
        return self.transfers.transfer(user_ids, from_=from_, to=to, resigned=resigned, message=message)

    def hand_over(self, userid: str, *, to: Sequence[str] | None = None, policy: str = "least_loaded",
                  resigned: bool | None = None, group_api: GroupApi | None = None) -> HandOver:
        """Hand every customer and group of ``userid`` over to colleagues (``to``, or every
        active member), spread by ``policy``: ``"round_robin"``, ``"least_loaded"`` (default)
        or ``"same_store"``. ``resigned`` defaults to whether the member has resigned (离职继承
        vs 在职转接). Groups move through WeCom when ``group_api`` is given (per-group codes),
        else locally. Returns every customer's :class:`Transfer` and every group's new owner."""
        assert self.groups is not None, "the workspace wires ws.staff.groups"
        leaving = self.get(userid).status is StaffStatus.RESIGNED if resigned is None else resigned
        return hand_over(self, self.groups, userid, to=to, policy=policy, resigned=leaving, group_api=group_api)

    def relation_counts(self) -> dict[str, int]:
        """``staff userid -> active relations`` (each member's load)."""
        with self._uow.read() as tx:
            return tx.staff.relation_counts()

    # -- merge participant ----------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> StaffMerge:
        moved, owner = tx.staff.move_customer(drop, keep)
        tx.meta.bump("staff")
        return StaffMerge(staff=moved, owner=owner)

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: StaffMerge, at: datetime) -> None:
        tx.staff.move_back(keep, drop, record["staff"], record["owner"])

    # -- internals -------------------------------------------------------------------------------
    def _when(self, at: datetime | None) -> datetime:
        if at is None:
            return self._uow.now()
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValidationError(f"at must be a timezone-aware datetime, got {at!r}")
        return at

    def _ensure_member(self, tx: Transaction, userid: str, when: datetime) -> None:
        self._ensure_members(tx, {userid: when})

    def _ensure_members(self, tx: Transaction, first_seen: dict[str, datetime]) -> None:
        """Add the members not known yet (named by their userid), each as of its first mention."""
        known = {m.userid for m in tx.staff.members(first_seen)}
        for userid, when in first_seen.items():
            if userid not in known:
                tx.staff.save_member(StaffMember(userid=userid, name=userid, since=when))
                tx.emit(StaffAdded(at=when, userid=userid, changed=("userid",)))

    def _rule(self, tx: Transaction) -> OwnerRule:
        return OwnerRule(tx.meta.get(_OWNER_RULE) or OwnerRule.FIRST_ADDER)

    def _set_owner(self, tx: Transaction, customer: int, staff: str | None, at: datetime, reason: str) -> None:
        owners: dict[int, str | None] = dict(tx.staff.owners([customer]))
        changes = self._owner_change(tx, owners, customer, staff, at, reason)
        if changes:
            tx.staff.set_owners(changes)
            tx.meta.bump("staff")

    def _owner_change(self, tx: Transaction, owners: dict[int, str | None], customer: int, staff: str | None,
                      at: datetime, reason: str) -> list[OwnerChange]:
        """The owner change to store (none if ``staff`` owns the customer already); updates ``owners``
        and emits the event. The caller stores it."""
        current = owners.get(customer)
        if current == staff:
            return []
        owners[customer] = staff
        tx.emit(OwnerChanged(at=at, user_id=customer, from_staff=current, to_staff=staff, reason=reason))
        return [OwnerChange(user_id=customer, staff=staff, at=at, reason=reason)]

    def _take_over(self, tx: Transaction, customer: int, from_: str, to: str, at: datetime, reason: str) -> None:
        """Move one relation and ownership for a completed transfer (inside ``tx``, user locked)."""
        old = tx.staff.relation(customer, from_)
        self._ensure_member(tx, to, at)
        if old is not None and old.active:
            tx.staff.save_relations([attrs.evolve(old, status=RelationStatus.TRANSFERRED, changed_at=at,
                                                  ended_at=at)])
            tx.emit(CustomerUnfollowed(at=at, user_id=customer, staff=from_, by="transfer", lost=False))
        target = tx.staff.relation(customer, to)
        if target is None or not target.active:
            kept = _kept(old)
            relation = Relation(user_id=customer, staff=to, status=RelationStatus.ACTIVE, since=at, changed_at=at,
                                **kept)
            tx.staff.save_relations([relation])
            tx.meta.bump("staff")
            tx.emit(CustomerFollowed(at=at, user_id=customer, staff=to, add_way=relation.add_way,
                                     state=relation.state))
        current = tx.staff.owners([customer]).get(customer)
        if current in (None, from_):
            self._set_owner(tx, customer, to, at, reason)


def _require_member(tx: Transaction, userid: str) -> StaffMember:
    found = tx.staff.members([userid])
    if not found:
        raise NotFound(f"no staff member {userid!r}; add one with ws.staff.add({userid!r}, name=...)")
    return found[0]


def _kept(old: Relation | None) -> dict[str, Any]:
    """What a relation keeps when it starts again (or moves to a new member in a transfer)."""
    if old is None:
        return {}
    return {"remark": old.remark, "description": old.description, "tags": old.tags, "add_way": old.add_way,
            "state": old.state, "oper_userid": old.oper_userid}


def _relation_fields(**given: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if given["add_way"] is not None:
        out["add_way"] = check_int(given["add_way"], "add_way", minimum=0, maximum=100_000)
    if given["state"] is not None:
        out["state"] = check_text(given["state"], "state", max_length=MAX_STATE, allow_empty=True) or None
    if given["remark"] is not None:
        out["remark"] = check_text(given["remark"], "remark", max_length=MAX_REMARK, allow_empty=True)
    if given["description"] is not None:
        out["description"] = check_text(given["description"], "description", max_length=MAX_DESCRIPTION,
                                        allow_empty=True)
    if given["tags"] is not None:
        tags = given["tags"]
        if isinstance(tags, str) or not isinstance(tags, Iterable):
            raise ValidationError(f"tags must be a list of tag names, got {tags!r}")
        out["tags"] = tuple(check_text(t, "tag", max_length=64) for t in tags)
    if given["oper_userid"] is not None:
        out["oper_userid"] = check_text(given["oper_userid"], "oper_userid", max_length=64)
    return out


def _enum(cls: type[E], value: object, name: str) -> E:
    try:
        return cls(str(value))
    except ValueError:
        raise ValidationError(f"{name} must be one of {', '.join(str(v) for v in cls)}, got {value!r}") from None
