"""Contract: campaigns -- delivery records, consent semantics, touches, attribution."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

import siyu
from siyu.storage.base import Capability
from siyu.storage.contracts.campaigns import NewDelivery
from siyu.testing.recording import RecordingChannel

from .base import ContractBase


def _campaign(ws: siyu.Workspace, name: str, ids: list[int], **kwargs: Any) -> int:
    if "recording" not in ws.channels:
        ws.channels.install(RecordingChannel())
    kwargs.setdefault("template", "hi")
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="recording")
    return ws.campaigns.create(name, audience=ids, channel="recording", **kwargs).id


class CampaignsContract(ContractBase):
    def test_one_delivery_record_per_campaign_user_occurrence(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{}, {}])
        cid = _campaign(ws, "c", ids)
        now = ws.now()
        with ws.write() as tx:
            tx.campaigns.add_deliveries(cid, "recording", "marketing", [
                NewDelivery(user_id=ids[0], variant="A", phase="send", status="queued", due_at=now),
                NewDelivery(user_id=ids[0], variant="A", phase="send", status="queued", occurrence="2", due_at=now),
            ], now)
        with pytest.raises(Exception), ws.write() as tx:  # noqa: B017 - the backend's own integrity error
            tx.campaigns.add_deliveries(cid, "recording", "marketing", [
                NewDelivery(user_id=ids[0], variant="B", phase="send", status="queued")], now)
        with ws.read() as tx:
            assert tx.campaigns.existing_users(cid) == [ids[0]]
            assert [d.occurrence for d in tx.campaigns.due(cid, now, 10)] == ["", "2"]

    def test_only_from_guards_status_changes(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{}])
        cid = _campaign(ws, "c", ids)
        now = ws.now()
        with ws.write() as tx:
            (did,) = tx.campaigns.add_deliveries(cid, "recording", "marketing", [
                NewDelivery(user_id=ids[0], variant="A", phase="send", status="pending", claimed_at=now)], now)
            tx.campaigns.set_status([(did, {"status": "unknown"})], only_from="pending")
            tx.campaigns.set_status([(did, {"status": "sent"})], only_from="pending")
            assert tx.campaigns.deliveries(cid)[0].status == "unknown"

    def test_records_by_id_and_due_by_status_and_reason(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{}, {}, {}])
        cid = _campaign(ws, "c", ids)
        now = ws.now()
        later = now + timedelta(minutes=5)
        with ws.write() as tx:
            a, b, c = tx.campaigns.add_deliveries(cid, "recording", "marketing", [
                NewDelivery(user_id=ids[0], variant="A", phase="send", status="queued", due_at=later),
                NewDelivery(user_id=ids[1], variant="A", phase="send", status="unknown", due_at=now,
                            reason="reconciling"),
                NewDelivery(user_id=ids[2], variant="A", phase="send", status="unknown", reason="outcome_unknown"),
            ], now)
            tx.campaigns.set_status([(a, {"holder": "token:run"})])
        with ws.read() as tx:
            assert [(d.id, d.user_id) for d in tx.campaigns.records([c, a, 10**9])] == [(a, ids[0]), (c, ids[2])]
            assert tx.campaigns.records([a])[0].holder == "token:run"
            assert [d.id for d in tx.campaigns.due(cid, now, 10, status="unknown", reason="reconciling")] == [b]
            assert tx.campaigns.due(cid, now, 10, status="unknown", reason="other") == []
            assert tx.campaigns.due(cid, now, 10) == []  # the queued one is due later
            assert tx.campaigns.next_due(cid) == later
            assert tx.campaigns.next_due(cid, "unknown", "reconciling") == now

    def test_consented_follows_the_latest_record(self, ws: siyu.Workspace, clock: Any) -> None:
        a, b, c, d = ws.users.add_many([{}, {}, {}, {}])
        ws.users.consent(a, purpose="marketing", channel="sms")
        ws.users.consent(b, purpose="marketing", channel="*")
        ws.users.consent(c, purpose="marketing", channel="sms")
        ws.users.consent(c, purpose="marketing", channel="*", granted=False)
        # A back-dated withdrawal does not override a newer grant.
        ws.users.consent(d, purpose="marketing", channel="sms")
        ws.users.consent(d, purpose="marketing", channel="sms", granted=False, at=clock.now - timedelta(days=1))
        with ws.read() as tx:
            assert tx.campaigns.consented("marketing", "sms") == [a, b, d]
            assert tx.campaigns.consented("marketing", "sms", user_ids=[b, c]) == [b]
            assert tx.campaigns.consented("marketing", "wecom") == [b]
        for uid in (a, b, c, d):
            with ws.read() as tx:
                expected = uid in tx.campaigns.consented("marketing", "sms")
            assert ws.users.has_consent(uid, purpose="marketing", channel="sms") is expected

    def test_touches_and_last_touch_window(self, ws: siyu.Workspace, clock: Any) -> None:
        ids = ws.users.add_many([{}])
        short = _campaign(ws, "short", ids, goal="order", attribution_window=timedelta(hours=1))
        ws.campaigns.send(short)
        with ws.read() as tx:
            assert [(u, ch) for u, _, ch in tx.campaigns.touches(clock.now - timedelta(days=1))] == [
                (ids[0], "recording")]
            assert tx.campaigns.touches(clock.now + timedelta(seconds=1)) == []
            assert tx.campaigns.last_touch(ids[0], clock.now + timedelta(minutes=59), "order") is not None
            assert tx.campaigns.last_touch(ids[0], clock.now + timedelta(minutes=61), "order") is None
            assert tx.campaigns.last_touch(ids[0], clock.now, "signup") is None
        assert ws.campaigns.convert(ids[0], "order") is not None
        ws.campaigns.convert(ids[0], "order")  # one conversion per delivery
        assert ws.campaigns.results(short, phase=None)["A"].conversions == 1

    def test_settings_and_suppression_persist(self, connect: Any) -> None:
        ws = connect()
        uid = ws.users.add().id
        ws.campaigns.configure(budget={"day": 3}, quiet_hours=None)
        ws.campaigns.suppress(uid, channel="sms", reason="TD")
        with ws.read() as tx:
            assert tx.campaigns.suppressed("sms") == [uid] and tx.campaigns.suppressed("wecom") == []
        assert ws.campaigns.unsuppress(uid, channel="sms") and not ws.campaigns.unsuppress(uid, channel="sms")
        assert ws.campaigns.settings()["budget"] == {"day": 3} and ws.campaigns.settings()["quiet_hours"] is None

    def test_two_workspaces_on_one_database_never_send_twice(self, connect: Any, caps: frozenset[str]) -> None:
        if Capability.MULTI_PROCESS not in caps:
            pytest.skip("the backend does not share one database between connections")
        first, second = connect(), connect()
        ids = first.users.add_many([{} for _ in range(40)])
        for uid in ids:
            first.users.consent(uid, purpose="marketing", channel="outbox")
        cid = first.campaigns.create("shared", audience=ids, channel="outbox", template="hi").id
        errors: list[BaseException] = []

        def run(call: Any) -> None:
            try:
                call()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def keep_resuming() -> None:
            for _ in range(20):
                second.campaigns.resume(cid, batch=3, recover_after=timedelta(minutes=10))

        threads = [
            threading.Thread(target=run, args=(lambda: first.campaigns.send(cid, batch=3),)),
            threading.Thread(target=run, args=(keep_resuming,)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        first.campaigns.resume(cid)
        outbox = second.channels.outbox()
        assert sorted(m.user_id for m in outbox.iter_messages()) == ids
        assert {d.status for d in first.campaigns.deliveries(cid)} == {"sent"}

    def test_receipts_are_found_by_provider_id_and_counted(self, ws: siyu.Workspace) -> None:
        from siyu.storage.contracts.campaigns import ReceiptRow

        ids = ws.users.add_many([{}, {}, {}])
        cid = _campaign(ws, "c", ids)
        ws.campaigns.send(cid)
        now = ws.now()
        with ws.write() as tx:
            rows = tx.campaigns.deliveries(cid)
            by_id = {d.provider_id: d for d in rows}
            assert set(by_id) == {"rec-1", "rec-2", "rec-3"}
            found = tx.campaigns.by_provider_ids("recording", ["rec-2", "rec-9", "rec-3"])
            assert [d.provider_id for d in found] == ["rec-2", "rec-3"]
            assert tx.campaigns.by_provider_ids("sms_aliyun", ["rec-2"]) == []  # another channel's ids
            first = ReceiptRow(delivery_id=by_id["rec-1"].id, campaign_id=cid, status="failed", code="UNDELIV",
                               detail=None, reported_at=now - timedelta(minutes=1), recorded_at=now)
            tx.campaigns.put_receipts([
                first,
                ReceiptRow(delivery_id=by_id["rec-2"].id, campaign_id=cid, status="delivered", code=None,
                           detail="ok", reported_at=None, recorded_at=now),
            ])
            tx.campaigns.put_receipts([ReceiptRow(
                delivery_id=by_id["rec-1"].id, campaign_id=cid, status="delivered", code="DELIVRD",
                detail=None, reported_at=now, recorded_at=now,
            )])
            got = tx.campaigns.receipts([d.id for d in rows])
            assert set(got) == {by_id["rec-1"].id, by_id["rec-2"].id}
            assert (got[by_id["rec-1"].id].status, got[by_id["rec-1"].id].code) == ("delivered", "DELIVRD")
            assert got[by_id["rec-1"].id].reported_at == now
            assert tx.campaigns.receipt_counts(cid) == {("A", "delivered"): 2}
            assert tx.campaigns.receipt_counts(cid, phase="pilot") == {}

    def test_credited_counts_a_credit_only_on_the_first_address(self, ws: siyu.Workspace) -> None:
        a = ws.users.add(wechat_openid="o_a", app="wx1").id
        b = ws.users.add(wechat_openid="o_b", app="wx1").id
        c = ws.users.add(wechat_openid="o_c1", app="wx1").id
        ws.users.link(c, "wechat_openid", "o_c2", app="wx2")
        d = ws.users.add(wechat_openid="o_d", app="wx2").id
        now = ws.now()
        with ws.write() as tx:
            tx.channels.set_credits("miniprogram", "o_a", "T1", 1, now)
            tx.channels.set_credits("miniprogram", "o_b", "T1", 0, now)  # used up
            tx.channels.set_credits("miniprogram", "o_c2", "T1", 2, now)  # not the address a send uses
            tx.channels.set_credits("miniprogram", "o_d", "T1", 1, now)
            tx.channels.set_credits("miniprogram", "o_a", "T2", 1, now)
        with ws.read() as tx:
            assert tx.campaigns.credited("miniprogram", "T1", "wechat_openid", [a, b, c, d]) == [a, d]
            assert tx.campaigns.credited("miniprogram", "T1", "wechat_openid", [b, d]) == [d]
            assert tx.campaigns.credited("miniprogram", "T2", "wechat_openid", [a, b, c, d]) == [a]
            assert tx.campaigns.credited("other", "T1", "wechat_openid", [a, b, c, d]) == []
            assert tx.campaigns.credited("miniprogram", "T1", "wechat_openid", []) == []
