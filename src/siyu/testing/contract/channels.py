"""Contract: what channels keep in storage (outbox, callback claims, credits, state)."""

from __future__ import annotations

from collections.abc import Callable

import siyu
from siyu.channels import Message
from siyu.storage.base import Capability

from .base import ContractBase


class ChannelsContract(ContractBase):
    def test_outbox_stores_each_key_once(self, ws: siyu.Workspace) -> None:
        outbox = ws.channels.outbox()
        results = outbox.send(
            [Message("a", text="1", key="k"), Message("b", text="2"), Message("a", text="1", key="k")]
        )
        assert results[0].provider_id == results[2].provider_id != results[1].provider_id
        assert outbox.send([Message("a", text="1", key="k")])[0].provider_id == results[0].provider_id
        assert [(m.recipient, m.key) for m in outbox.messages()] == [("a", "k"), ("b", None)]
        assert ws.channels.outbox(label="dry").send([Message("a", text="1", key="k")])[0].provider_id != (
            results[0].provider_id
        )

    def test_outbox_bulk_survives_reopen(self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]) -> None:
        ws = connect()
        ws.channels.outbox().send([Message(f"u{i}", text="双11", key=str(i)) for i in range(3000)])
        if Capability.DURABLE not in caps:
            assert ws.channels.outbox().count() == 3000
            return
        again = connect()
        outbox = again.channels.outbox()
        assert outbox.count() == 3000
        assert [m.text for m in outbox.messages(limit=2)] == ["双11", "双11"]
        assert outbox.clear() == 3000 and outbox.count() == 0

    def test_callback_claims_are_once_only(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            assert tx.channels.claim_callback("wecom", "e1", ws.now())
            assert not tx.channels.claim_callback("wecom", "e1", ws.now())
            assert tx.channels.claim_callback("other", "e1", ws.now())

    def test_many_callback_claims_at_once(self, ws: siyu.Workspace) -> None:
        ids = [f"e{i}" for i in range(450)]  # more than one statement's worth
        with ws.write() as tx:
            assert tx.channels.claim_callback("wecom", "e7", ws.now())
            claimed = tx.channels.claim_callbacks("wecom", [*ids, "e3", "x"], ws.now())
        assert claimed == [i != 7 for i in range(450)] + [False, True]
        with ws.write() as tx:
            assert tx.channels.claim_callbacks("wecom", ["x", "y", "y"], ws.now()) == [False, True, False]
            assert tx.channels.claim_callbacks("other", [], ws.now()) == []

    def test_claim_rolls_back_with_the_transaction(self, ws: siyu.Workspace) -> None:
        try:
            with ws.write() as tx:
                tx.channels.claim_callback("wecom", "e2", ws.now())
                raise RuntimeError("processing failed")
        except RuntimeError:
            pass
        with ws.write() as tx:
            assert tx.channels.claim_callback("wecom", "e2", ws.now())

    def test_credits_never_negative(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            assert tx.channels.credits("mp", "o1", "t") == 0
            assert tx.channels.add_credits("mp", "o1", "t", 2, ws.now()) == 2
            assert tx.channels.add_credits("mp", "o1", "t", -5, ws.now()) == 0
            tx.channels.set_credits("mp", "o1", "t", 3, ws.now())
            assert tx.channels.credits("mp", "o1", "t") == 3
            assert tx.channels.take_credit("mp", "o1", "t", ws.now())
            assert tx.channels.credits("mp", "o1", "t") == 2
            assert not tx.channels.take_credit("mp", "nobody", "t", ws.now())
            assert tx.channels.credits("mp", "o1", "other") == 0

    def test_state_items_by_prefix(self, ws: siyu.Workspace) -> None:
        with ws.write() as tx:
            tx.channels.state_put("wecom", "tag:a/b", "1")
            tx.channels.state_put("wecom", "tag:a/b", "2")
            tx.channels.state_put("wecom", "way:x", "3")
            tx.channels.state_put("sms", "tag:z", "4")
            assert tx.channels.state_get("wecom", "tag:a/b") == "2"
            assert tx.channels.state_items("wecom", "tag:") == [("tag:a/b", "2")]
            assert tx.channels.state_get("wecom", "missing") is None
