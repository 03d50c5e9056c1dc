"""``ws.tasks``: follow-up SOPs that give staff members tasks, and the tasks themselves.

Seed practice: greet a new customer within the hour and tag them within a day;
follow up a customer with buying intent every few days; win back a dormant one.
Each is an :class:`~siyu.staff.models.SopRule` (data, stored in the workspace):
the event-log consumer ``siyu.tasks`` turns committed events
(``CustomerFollowed``, ``LifecycleChanged``) into tasks, each with a due time and an
assignee, once per cause. ``due`` / ``overdue`` list them per staff member,
``complete`` closes one, ``on_time_rate`` measures the team.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from .._validation import check_aware, check_duration, check_id, check_many, check_optional_text, check_text
from ..errors import NotFound, ValidationError
from ..events import CustomerFollowed, Event, LifecycleChanged, TaskCompleted, TasksCreated
from ..services._common import require_user
from .models import SopRule, Task, TaskStatus
from .service import check_userid

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["DEFAULT_RULES", "Tasks"]

#: The SOPs every workspace starts with (change them with ``ws.tasks.set_rule``).
DEFAULT_RULES = (
    SopRule(name="greet", on="follow", title="打招呼：介绍自己和专属福利", due_hours=1),
    SopRule(name="tag", on="follow", title="打标签：记录需求和偏好", due_hours=24),
    SopRule(name="intent_follow_up", on="stage:intent", title="跟进意向客户", due_hours=72, repeat_hours=72),
    SopRule(name="win_back", on="stage:dormant", title="唤醒沉睡客户", due_hours=24),
)
_RULES = "tasks.rules"


class Tasks:
    """``ws.tasks``: SOP rules and the follow-up tasks they make."""

    name = "tasks"
    #: The event classes the ``siyu.tasks`` consumer reads.
    event_types = (CustomerFollowed, LifecycleChanged)

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    # -- rules -------------------------------------------------------------------------------
    def rules(self) -> list[SopRule]:
        """Every rule (the defaults, changed or added to by ``set_rule``)."""
        with self._uow.read() as tx:
            return self._rules(tx)

    def set_rule(self, name: str, *, on: str, title: str, due_hours: float, repeat_hours: float | None = None,
                 enabled: bool = True) -> SopRule:
        """Add or replace a rule. ``on`` is ``"follow"`` or ``"stage:<stage>"``."""
        check_text(on, "on", max_length=64)
        if on != "follow" and not (on.startswith("stage:") and len(on) > 6):
            raise ValidationError(f"on must be 'follow' or 'stage:<lifecycle stage>', got {on!r}")
        for label, hours in (("due_hours", due_hours), ("repeat_hours", repeat_hours)):
            if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0):
                raise ValidationError(f"{label} must be a positive number of hours, got {hours!r}")
        rule = SopRule(name=check_text(name, "name", max_length=40), on=on, title=check_text(title, "title"),
                       due_hours=float(due_hours), repeat_hours=None if repeat_hours is None else float(repeat_hours),
                       enabled=bool(enabled))
        with self._uow.write() as tx:
            rules = {r.name: r for r in self._rules(tx)}
            rules[rule.name] = rule
            tx.meta.set(_RULES, json.dumps([attrs.asdict(r) for r in rules.values()], ensure_ascii=False))
        return rule

    # -- tasks -----------------------------------------------------------------------------------
    def create(self, user_id: int, staff: str, title: str, *, due_at: datetime) -> Task:
        """A task by hand (``rule="manual"``)."""
        due_at = check_aware(due_at, "due_at")
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            task = Task(id=0, rule="manual", user_id=uid, staff=check_userid(staff, "staff"),
                        title=check_text(title, "title"), created_at=now, due_at=due_at)
            (task_id,) = tx.staff.add_tasks([(task, f"manual:{uid}:{now.isoformat()}:{title}")])
            tx.emit(TasksCreated(at=now, task_ids=(task_id,), staff=(task.staff,)))
        return attrs.evolve(task, id=task_id)

    def due(self, *, staff: str | None = None, within: timedelta | None = None) -> list[Task]:
        """Open tasks by due time (of one staff member; due within ``within`` from now, if given)."""
        check_optional_text(staff, "staff")
        before = None if within is None else self._uow.now() + check_duration(within, "within")
        with self._uow.read() as tx:
            return tx.staff.tasks(staff=staff, status=TaskStatus.OPEN, due_before=before)

    def overdue(self, *, staff: str | None = None) -> list[Task]:
        """Open tasks past their due time."""
        check_optional_text(staff, "staff")
        with self._uow.read() as tx:
            return tx.staff.tasks(staff=staff, status=TaskStatus.OPEN, due_before=self._uow.now())

    def of(self, user_id: int) -> list[Task]:
        """Every task about one customer."""
        with self._uow.read() as tx:
            return tx.staff.tasks(user_id=require_user(tx, user_id, active=False))

    def complete(self, task_id: int) -> Task:
        """Close an open task (a repeating rule makes the next one while the customer stays in its stage).
        Completing it again returns it unchanged."""
        tid = check_id(task_id, "task_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            found = tx.staff.tasks(ids=[tid])
            if not found:
                raise NotFound(f"no task {tid}")
            task = found[0]
            if task.status is not TaskStatus.OPEN:
                return task
            tx.staff.set_task_status(tid, TaskStatus.DONE, now)
            tx.emit(TaskCompleted(at=now, task_id=tid, staff=task.staff, on_time=now <= task.due_at))
            rule = {r.name: r for r in self._rules(tx)}.get(task.rule)
            if rule is not None and rule.repeat_hours and rule.on.startswith("stage:"):
                stage = tx.lifecycle.stages("lifecycle", [task.user_id]).get(task.user_id)
                if stage == rule.on.removeprefix("stage:"):
                    self._make(tx, [(rule, task.user_id, task.staff, now, f"repeat:{tid}")], now, rule.repeat_hours)
        return attrs.evolve(task, status=TaskStatus.DONE, completed_at=now)

    def on_time_rate(self, *, staff: str | None = None, since: datetime | None = None) -> float | None:
        """Of the tasks due since ``since`` (and before now), the share completed on time;
        ``None`` when none were due."""
        check_optional_text(staff, "staff")
        if since is not None:
            check_aware(since, "since")
        now = self._uow.now()
        with self._uow.read() as tx:
            due = [t for t in tx.staff.tasks(staff=staff, due_before=now)
                   if t.status is not TaskStatus.CANCELLED and (since is None or t.due_at >= since)]
        return None if not due else sum(t.on_time for t in due) / len(due)

    # -- the consumer ---------------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """The ``siyu.tasks`` consumer: make the tasks the rules ask for (once per cause)."""
        events = check_many(events, "events", "the events the event log delivered")
        with self._uow.write() as tx:
            rules = [r for r in self._rules(tx) if r.enabled]
            if not rules:
                return
            wanted: list[tuple[SopRule, int, str, datetime, str]] = []
            owners = tx.staff.owners({e.user_id for e in events if isinstance(e, LifecycleChanged)})
            for event in events:
                if isinstance(event, CustomerFollowed):
                    wanted += [(r, event.user_id, event.staff, event.at, f"follow:{event.staff}:{event.at.isoformat()}")
                               for r in rules if r.on == "follow"]
                elif isinstance(event, LifecycleChanged):
                    self._cancel_left(tx, event, rules)
                    owner = owners.get(event.user_id)
                    if owner is not None:
                        wanted += [(r, event.user_id, owner, event.at, f"stage:{event.at.isoformat()}")
                                   for r in rules if r.on == f"stage:{event.to_stage}"]
            self._make(tx, wanted, self._uow.now())

    def _make(self, tx: Transaction, wanted: list[tuple[SopRule, int, str, datetime, str]], now: datetime,
              hours: float | None = None) -> None:
        rows = [(Task(id=0, rule=r.name, user_id=uid, staff=staff, title=r.title, created_at=now,
                      due_at=at + timedelta(hours=hours or r.due_hours)), f"{r.name}:{uid}:{cause}")
                for r, uid, staff, at, cause in wanted]
        ids = tx.staff.add_tasks(rows)
        if ids:
            tx.emit(TasksCreated(at=now, task_ids=tuple(ids), staff=tuple(sorted({t.staff for t, _ in rows}))))

    @staticmethod
    def _cancel_left(tx: Transaction, event: LifecycleChanged, rules: list[SopRule]) -> None:
        """A customer who left a stage no longer needs that stage's open tasks."""
        names = {r.name for r in rules if event.from_stage and r.on == f"stage:{event.from_stage}"}
        if names:
            for task in tx.staff.tasks(user_id=event.user_id, status=TaskStatus.OPEN):
                if task.rule in names:
                    tx.staff.set_task_status(task.id, TaskStatus.CANCELLED, None)

    @staticmethod
    def _rules(tx: Transaction) -> list[SopRule]:
        stored = tx.meta.get(_RULES)
        if stored is None:
            return list(DEFAULT_RULES)
        return [SopRule(**r) for r in json.loads(stored)]
