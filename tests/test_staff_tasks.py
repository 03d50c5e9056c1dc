"""Follow-up SOPs: tasks from rules, due and overdue lists, completion, repeats, on-time rates."""

from __future__ import annotations

from datetime import timedelta

import pytest

import siyu
from siyu.errors import NotFound, ValidationError
from siyu.staff import TaskStatus
from siyu.testing import FakeClock


def test_a_new_customer_gets_greet_and_tag_tasks(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    ws.staff.follow(u, "li")
    due = ws.tasks.due(staff="li")
    assert [(t.rule, t.due_at - clock()) for t in due] == [("greet", timedelta(hours=1)),
                                                           ("tag", timedelta(hours=24))]
    assert ws.tasks.due(staff="wang") == []
    assert [t.rule for t in ws.tasks.due(within=timedelta(hours=2))] == ["greet"]
    clock.advance(minutes=30)
    ws.tasks.complete(due[0].id)
    clock.advance(hours=30)
    assert [t.rule for t in ws.tasks.overdue(staff="li")] == ["tag"]
    assert ws.tasks.on_time_rate(staff="li") == 0.5
    again = ws.tasks.complete(due[0].id)
    assert again.status is TaskStatus.DONE and again.on_time


def test_each_cause_makes_its_task_once(ws: siyu.Workspace) -> None:
    u = ws.users.add().id
    ws.staff.follow(u, "li")
    ws.staff.follow(u, "li", remark="张姐")  # an update of the same relation: no new tasks
    assert len(ws.tasks.of(u)) == 2
    ws.event_log.replay("siyu.tasks", 1)  # redelivered from the start: nothing new
    ws.event_log.deliver()
    assert len(ws.tasks.of(u)) == 2


def test_intent_is_followed_up_every_3_days_until_the_stage_changes(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    ws.staff.follow(u, "li")
    for t in ws.tasks.due():
        ws.tasks.complete(t.id)
    ws.events.track(u, "added_to_cart")  # an intent event (lifecycle default) -> stage intent
    assert ws.lifecycle.stage(u) == "intent"
    (first,) = ws.tasks.due(staff="li")
    assert (first.rule, first.due_at - clock()) == ("intent_follow_up", timedelta(days=3))
    clock.advance(days=2)
    ws.tasks.complete(first.id)
    (second,) = ws.tasks.due(staff="li")
    assert second.due_at - clock() == timedelta(days=3)
    ws.lifecycle.mark_lost(u, "test")  # leaves intent: the open follow-up is cancelled
    assert ws.tasks.due(staff="li") == []
    assert {t.status for t in ws.tasks.of(u)} == {TaskStatus.DONE, TaskStatus.CANCELLED}


def test_rules_are_data(ws: siyu.Workspace) -> None:
    ws.tasks.set_rule("greet", on="follow", title="greet", due_hours=1, enabled=False)
    ws.tasks.set_rule("vip", on="follow", title="邀请进 VIP 群", due_hours=48)
    u = ws.users.add().id
    ws.staff.follow(u, "li")
    assert sorted(t.rule for t in ws.tasks.of(u)) == ["tag", "vip"]
    with pytest.raises(ValidationError):
        ws.tasks.set_rule("x", on="birthday", title="t", due_hours=1)
    with pytest.raises(ValidationError):
        ws.tasks.set_rule("x", on="follow", title="t", due_hours=0)
    with pytest.raises(NotFound):
        ws.tasks.complete(999)


def test_manual_task(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    task = ws.tasks.create(u, "wang", "生日前送券", due_at=clock() + timedelta(days=7))
    assert [t.id for t in ws.tasks.due(staff="wang")] == [task.id]
