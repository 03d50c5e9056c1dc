"""``siyu events``, ``siyu run-due`` and ``siyu worker`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

import siyu
from siyu.cli import cli


def invoke(db: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db, *args], catch_exceptions=False)


class Failing:
    siyu_consumer = "crm-sync"

    @siyu.hookimpl
    @siyu.observes(siyu.events.UserCreated)
    def siyu_on_event(self, event: Any) -> None:
        raise ConnectionError("crm unreachable")


def test_status_shows_lag_and_the_error_then_retry_and_skip(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db, plugins=[Failing()]) as ws:
        ws.users.add_many([{}, {}])
    result = invoke(db, "events", "status", "--json")
    status = {c["name"]: c for c in json.loads(result.output)["consumers"]}
    assert json.loads(result.output)["head"] == 2
    crm = status["crm-sync"]
    assert (crm["lag"], crm["failed_position"], crm["error"], crm["declared"]) == (
        2, 1, "ConnectionError: crm unreachable", False)
    assert status["siyu.lifecycle"]["lag"] == 0
    table = invoke(db, "events", "status").output
    assert "crm-sync" in table and "retrying" in table and "ConnectionError" in table
    assert "now at position 1" in invoke(db, "events", "skip", "crm-sync").output
    assert "2 event(s) to deliver again" in invoke(db, "events", "replay", "crm-sync", "--from", "1").output
    assert invoke(db, "events", "retry", "nobody").exit_code == 1


def test_tail_prints_json_lines(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db) as ws:
        ws.users.add_many([{} for _ in range(12)])
    lines = [json.loads(line) for line in invoke(db, "events", "tail").output.splitlines()]
    assert [e["position"] for e in lines] == list(range(3, 13))
    assert lines[0]["type"] == "UserCreated" and lines[0]["data"] == {"user_id": 3, "source": None}
    only = invoke(db, "events", "tail", "--after", "0", "--type", "UserCreated").output.splitlines()
    assert len(only) == 12


def test_run_due_delivers_and_runs_every_job_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db, delivery="worker") as ws:
        ws.users.add_many([{}, {}])
    report = json.loads(invoke(db, "run-due").output)
    assert report["delivered"] > 0
    assert report["jobs"]["lifecycle.sweep"] == {"new": 2}
    assert set(report["jobs"]) >= {"campaigns.run_due", "points.expire", "commissions.settle", "group_buys.expire",
                                   "coupons.expire", "event_log.prune", "tag_rules.run"}
    with siyu.connect(db, delivery="worker") as ws:
        assert all(c.lag == 0 for c in ws.event_log.consumers())
        with ws.read() as tx:
            assert {job[0] for job in tx.event_log.jobs()} >= {"lifecycle.sweep"}


def test_worker_delivers_then_exits_when_idle(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db, delivery="worker") as ws:
        u = ws.users.add().id
        ws.tags.define("default/x")
        ws.tags.rules.add("vip/any", "tag:default/x")
        ws.tags.apply(u, "x")
    result = invoke(db, "worker", "--poll", "0.01", "--idle-exit", "0.2")
    assert json.loads(result.output.splitlines()[-1])["stopped"] is True
    with siyu.connect(db, delivery="worker") as ws:
        assert ws.tags.of(u) == {"default/x", "vip/any", "lifecycle/new"}  # the rule ran, and the due sweep
