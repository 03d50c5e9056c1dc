"""Contract: the event log (appended with the change, read in order, checkpoints, leases, jobs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

import siyu
from siyu.storage.contracts.event_log import NewLogEntry

from .base import ContractBase


def _entry(ws: siyu.Workspace, n: int) -> NewLogEntry:
    return NewLogEntry(type="UserCreated", schema_version=1, occurred_at=ws.now(), user_id=n,
                       correlation_id="c", payload=f'{{"user_id":{n},"source":null}}')


class EventLogContract(ContractBase):
    def test_positions_increase_and_a_rolled_back_append_leaves_nothing(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            first = tx.event_log.append([_entry(ws, 1), _entry(ws, 2)], ws.now())
        with pytest.raises(RuntimeError), ws.write() as tx:
            tx.event_log.append([_entry(ws, 3)], ws.now())
            raise RuntimeError("roll back")
        with ws.write() as tx:
            second = tx.event_log.append([_entry(ws, 4)], ws.now())
        assert first[0] < first[1] < second[0]
        horizon = ws.backend.event_horizon()
        assert horizon == second[0]
        with ws.read() as tx:
            rows = tx.event_log.read(0, horizon, None, 10)
            assert [r.user_id for r in rows] == [1, 2, 4]
            assert [r.position for r in tx.event_log.read(first[0], None, ["UserCreated"], 1)] == [first[1]]
            assert tx.event_log.count(0, horizon) == 3

    def test_a_bulk_append_reads_back_event_by_event_from_any_checkpoint(self, ws: siyu.Workspace) -> None:
        people = [7, 8, 7, 9, 8, 7]
        with ws.write() as tx:
            positions = tx.event_log.append([_entry(ws, n) for n in people], ws.now())
            [single] = tx.event_log.append([_entry(ws, 5)], ws.now())
        assert positions == list(range(positions[0], positions[0] + 6)) and single > positions[-1]
        horizon = ws.backend.event_horizon()
        assert horizon == single
        with ws.read() as tx:
            assert tx.event_log.head() == single
            middle = tx.event_log.read(positions[1], horizon, None, 2)
            assert [(r.position, r.user_id) for r in middle] == [(positions[2], 7), (positions[3], 9)]
            assert middle[1].payload == '{"user_id":9,"source":null}'
            assert tx.event_log.count(positions[3], horizon) == 3
            assert tx.event_log.count(positions[3], positions[4]) == 1
        with ws.write() as tx:
            assert tx.event_log.redact([8], lambda payload: payload.replace("8", "0")) == 2
            assert tx.event_log.redact([8], lambda payload: payload.replace("8", "0")) == 0
        with ws.read() as tx:
            rows = tx.event_log.read(0, horizon, None, 100)
        assert [r.redacted for r in rows] == [False, True, False, False, True, False, False]
        assert [r.payload for r in rows][:2] == ['{"user_id":7,"source":null}', '{"user_id":0,"source":null}']
        with ws.write() as tx:  # pruning inside a bulk write keeps its tail, redactions included
            assert tx.event_log.prune(positions[3], ws.now() + timedelta(seconds=1)) == 4
        with ws.read() as tx:
            rows = tx.event_log.read(0, horizon, None, 100)
            assert tx.event_log.count(0, horizon) == 3
        assert [(r.position, r.user_id, r.redacted) for r in rows] == [
            (positions[4], 8, True), (positions[5], 7, False), (single, 5, False)]
        with ws.write() as tx:
            assert tx.event_log.redact([7], lambda payload: "{}") == 1

    def test_checkpoints_advance_only_from_where_they_were(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            tx.event_log.ensure_consumers([("c1", "handler")], 0, ws.now())
            tx.event_log.ensure_consumers([("c1", "handler")], 5, ws.now())  # exists: unchanged
            assert tx.event_log.advance("c1", 3, expected=0, at=ws.now())
            assert not tx.event_log.advance("c1", 9, expected=0, at=ws.now())
            [row] = tx.event_log.claim(["c1"], skip_locked=True)
            assert row.position == 3
            tx.event_log.note_failure("c1", "boom", 4, ws.now())
            tx.event_log.note_failure("c1", "boom", 4, ws.now())
        with ws.read() as tx:
            [row] = [r for r in tx.event_log.consumers() if r.name == "c1"]
        assert (row.attempts, row.error, row.failed_position) == (2, "boom", 4)

    def test_leases_keep_a_second_owner_out_until_they_run_out(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            tx.event_log.ensure_consumers([("relay", "sink")], 0, ws.now())
            assert tx.event_log.lease("relay", "a", 2_000, 1_000)
            assert tx.event_log.lease("relay", "a", 3_000, 1_500)
            assert not tx.event_log.lease("relay", "b", 3_000, 2_000)
            assert tx.event_log.lease("relay", "b", 9_000, 3_001)

    def test_a_due_job_is_claimed_once_per_turn(self, ws: siyu.Workspace) -> None:
        now = ws.now()
        with ws.write() as tx:
            assert tx.event_log.claim_job("sweep", now, now + timedelta(hours=1))
            assert not tx.event_log.claim_job("sweep", now, now + timedelta(hours=1))
            assert tx.event_log.claim_job("sweep", now + timedelta(hours=1), now + timedelta(hours=2))

    def test_events_are_logged_by_every_write(self, connect: Callable[..., siyu.Workspace]) -> None:
        ws = connect()
        u = ws.users.add()
        ws.tags.apply(u.id, "vip")
        assert [e.type for e in ws.event_log.read()] == ["UserCreated", "TagApplied"]
