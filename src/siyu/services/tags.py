"""Tags: ``group/name`` labels on users, in groups that may be exclusive."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from .._text import DEFAULT_GROUP, MAX_GROUP_LENGTH, MAX_TAG_LENGTH, check_tag_part, split_tag
from ..errors import Conflict, NotFound, ValidationError
from ..events import TagApplied, TagRemoved
from ..models.tags import TagApplication, TagGroup
from ._common import check_many, check_text, check_user_id, require_user, require_users
from .tag_rules import TagRules

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..segments import Segments
    from ..storage.base import Transaction

__all__ = ["DEFAULT_GROUP", "MAX_GROUP_LENGTH", "MAX_TAG_LENGTH", "Tags", "split_tag"]


class TagsMoved(TypedDict):
    """The tags part of a merge record: tag ids ``drop`` held, and those ``keep`` gained."""

    dropped_held: list[int]
    added_to_keep: list[int]


class Tags:
    """``ws.tags``: define groups, apply and remove tags, read who holds what."""

    name = "tags"

    def __init__(self, uow: UnitOfWork, *, segments: Segments) -> None:
        self._uow = uow
        #: Rule-based tags: ``ws.tags.rules.add(tag, expression)``, see :class:`TagRules`.
        self.rules = TagRules(uow, tags=self, segments=segments)

    # -- groups -----------------------------------------------------------------
    def define_group(self, name: str, *, exclusive: bool = False, description: str = "") -> TagGroup:
        """Create or update a tag group. In an ``exclusive`` group (such as the
        lifecycle stage) applying one tag removes the user's other tag of the group."""
        check_tag_part(check_text(name, "group name", max_length=64), "group", MAX_GROUP_LENGTH, name)
        if not isinstance(exclusive, bool):
            raise ValidationError(f"exclusive must be True or False, got {exclusive!r}")
        group = TagGroup(name=name, exclusive=exclusive, description=check_text(
            description, "description", max_length=500, allow_empty=True))
        with self._uow.write() as tx:
            if exclusive:
                self._check_can_be_exclusive(tx, name)
            tx.tags.save_group(group, self._uow.now())
            tx.meta.bump("tags")
        return group

    def _check_can_be_exclusive(self, tx: Transaction, group: str) -> None:
        per_user: dict[int, int] = {}
        for tag_id, g, _ in tx.tags.tags():
            if g == group:
                for uid in tx.tags.holders(tag_id):
                    per_user[uid] = per_user.get(uid, 0) + 1
                    if per_user[uid] > 1:
                        raise Conflict(
                            f"group {group!r} cannot become exclusive: user {uid} holds more than one of "
                            "its tags; remove the extra tags first"
                        )

    def groups(self) -> list[TagGroup]:
        with self._uow.read() as tx:
            return tx.tags.groups()

    def names(self, group: str | None = None) -> list[str]:
        """Every tag that exists, as ``group/name`` (of one group if given)."""
        with self._uow.read() as tx:
            return [f"{g}/{n}" for _, g, n in tx.tags.tags() if group is None or g == group]

    def define(self, tag: str) -> str:
        """Create a tag without applying it (so segments can refer to it)."""
        group, name = split_tag(tag)
        with self._uow.write() as tx:
            self._tag_id(tx, group, name, create=True)
        return f"{group}/{name}"

    # -- apply / remove ---------------------------------------------------------------
    def _tag_id(self, tx: Transaction, group: str, name: str, *, create: bool) -> int | None:
        tag_id = tx.tags.tag_id(group, name)
        if tag_id is None and create:
            tx.serialize("tags", [f"{group}/{name}"])  # first use: one process creates it, the others find it
            tag_id = tx.tags.tag_id(group, name)
        if tag_id is None and create:
            now = self._uow.now()
            if tx.tags.get_group(group) is None:
                tx.tags.save_group(TagGroup(name=group), now)
            tag_id = tx.tags.create_tag(group, name, now)
            tx.meta.bump("tags")
        return tag_id

    def apply(self, user_id: int, tag: str, *, by: str = "api") -> bool:
        """Give a user a tag (created on first use). ``by`` records what applied it
        (``"operator:alice"``, ``"rule:value/high"``, ``"import:file.csv"``).
        Returns ``False`` if the user already had it."""
        return self.apply_many([user_id], tag, by=by) == 1

    def apply_many(self, user_ids: Iterable[int], tag: str, *, by: str = "api") -> int:
        """Give many users a tag in one transaction; returns how many did not have it."""
        group, name = split_tag(tag)
        check_text(by, "by", max_length=128)
        ids = sorted({check_user_id(u) for u in check_many(user_ids, "user_ids", "[1, 2, 3]")})
        now = self._uow.now()
        with self._uow.write() as tx:
            return self.grant(tx, ids, (group, name), by=by, now=now)

    def grant(self, tx: Transaction, user_ids: list[int], tag: tuple[str, str], *, by: str, now: datetime) -> int:
        """:meth:`apply_many` inside ``tx`` with checked values (``tag`` from :func:`split_tag`):
        for services whose change puts the tag on (lifecycle stages, tag rules)."""
        group, name = tag
        require_users(tx, user_ids, lock=True)  # the check of what they hold stays true until commit
        tag_id = self._tag_id(tx, group, name, create=True)
        assert tag_id is not None
        held = tx.tags.held([(u, tag_id) for u in user_ids])
        new = [(u, tag_id) for u in user_ids if (u, tag_id) not in held]
        if not new:
            return 0
        group_info = tx.tags.get_group(group)
        if group_info is not None and group_info.exclusive:
            siblings = [tid for tid, g, _ in tx.tags.tags() if g == group and tid != tag_id]
            names = {tid: f"{g}/{n}" for tid, g, n in tx.tags.tags()}
            pairs = [(u, s) for u in (u for u, _ in new) for s in siblings]
            to_remove = sorted(tx.tags.held(pairs))
            if to_remove:
                tx.tags.remove(to_remove, now, by)
                for u, s in to_remove:
                    tx.emit(TagRemoved(at=now, user_id=u, tag=names[s], by=by))
        tx.tags.apply(new, now, by)
        full = f"{group}/{name}"
        for u, _ in new:
            tx.emit(TagApplied(at=now, user_id=u, tag=full, by=by))
        tx.meta.bump("tags")
        return len(new)

    def remove(self, user_id: int, tag: str, *, by: str = "api") -> bool:
        """Take a tag away; ``False`` if the user did not have it."""
        return self.remove_many([user_id], tag, by=by) == 1

    def remove_many(self, user_ids: Iterable[int], tag: str, *, by: str = "api") -> int:
        """Take a tag away from many users; returns how many had it."""
        group, name = split_tag(tag)
        check_text(by, "by", max_length=128)
        ids = sorted({check_user_id(u) for u in check_many(user_ids, "user_ids", "[1, 2, 3]")})
        now = self._uow.now()
        with self._uow.write() as tx:
            return self.revoke(tx, ids, (group, name), by=by, now=now)

    def revoke(self, tx: Transaction, user_ids: list[int], tag: tuple[str, str], *, by: str, now: datetime) -> int:
        """:meth:`remove_many` inside ``tx`` with checked values (see :meth:`grant`)."""
        group, name = tag
        require_users(tx, user_ids, lock=True)
        tag_id = tx.tags.tag_id(group, name)
        if tag_id is None:
            return 0
        held = sorted(tx.tags.held([(u, tag_id) for u in user_ids]))
        if not held:
            return 0
        tx.tags.remove(held, now, by)
        full = f"{group}/{name}"
        for u, _ in held:
            tx.emit(TagRemoved(at=now, user_id=u, tag=full, by=by))
        tx.meta.bump("tags")
        return len(held)

    # -- read -------------------------------------------------------------------
    def of(self, user_id: int) -> set[str]:
        """The tags a user holds now, as ``group/name``."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return {f"{g}/{n}" for _, g, n in tx.tags.applied(uid)}

    def users(self, tag: str) -> list[int]:
        """Ids of users holding ``tag``, ascending. An unknown tag raises NotFound."""
        group, name = split_tag(tag)
        with self._uow.read() as tx:
            tag_id = tx.tags.tag_id(group, name)
            if tag_id is None:
                raise NotFound(f"no tag {group}/{name!s}; known tags are listed by ws.tags.names()")
            return tx.tags.holders(tag_id)

    def history(self, user_id: int) -> list[TagApplication]:
        """Every application and removal of a tag on this user, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.tags.history(uid)

    tag_history = history

    # -- merge participant --------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> TagsMoved:
        by = f"merge:{drop}->{keep}"
        keep_tags = {tid: g for tid, g, _ in tx.tags.applied(keep)}
        drop_tags = [(tid, g) for tid, g, _ in tx.tags.applied(drop)]
        exclusive = {g.name for g in tx.tags.groups() if g.exclusive}
        keep_groups = set(keep_tags.values())
        added = [tid for tid, g in drop_tags if tid not in keep_tags and not (g in exclusive and g in keep_groups)]
        if drop_tags:
            tx.tags.remove([(drop, tid) for tid, _ in drop_tags], at, by)
        if added:
            tx.tags.apply([(keep, tid) for tid in added], at, by)
        tx.meta.bump("tags")
        return TagsMoved(dropped_held=[tid for tid, _ in drop_tags], added_to_keep=added)

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: TagsMoved, at: datetime) -> None:
        by = f"unmerge:{keep}->{drop}"
        held = tx.tags.held([(keep, tid) for tid in record["added_to_keep"]])
        if held:
            tx.tags.remove(sorted(held), at, by)
        # A merged-away user accepts no tags, but a database written by an older siyu
        # may have tagged it after the merge: what it holds now stays, and in an
        # exclusive group that later tag wins over the one the merge took away.
        holds_now = {tid: g for tid, g, _ in tx.tags.applied(drop)}
        exclusive = {g.name for g in tx.tags.groups() if g.exclusive}
        groups = {tid: g for tid, g, _ in tx.tags.tags()}
        taken = {g for g in holds_now.values() if g in exclusive}
        back = [tid for tid in record["dropped_held"] if tid not in holds_now and groups.get(tid) not in taken]
        if back:
            tx.tags.apply([(drop, tid) for tid in back], at, by)
        tx.meta.bump("tags")
