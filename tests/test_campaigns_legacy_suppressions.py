"""Suppression entries an older siyu filed under a channel's own name (before names
were mapped to their medium) still stop sends over that medium, and can be removed
by the same name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import siyu
from siyu.testing import FakeClock, RecordingChannel


def test_an_entry_under_a_channel_name_still_suppresses_and_can_be_removed(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    with siyu.connect(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as ws:
        sms = ws.channels.install(RecordingChannel(name="sms_test", consent_channel="sms"))
        ids = ws.users.add_many([{}, {}])
        for i, uid in enumerate(ids):
            ws.users.link(uid, "phone", f"1380013800{i}")
            ws.users.consent(uid, purpose="marketing", channel="sms")
        with ws.write() as tx:  # what suppress(channel="sms_test") stored before
            tx.execute(  # type: ignore[attr-defined]
                "INSERT INTO campaign_suppressions (user_id, channel, reason, at) VALUES (?, 'sms_test', 'opt_out', 0)",
                (ids[0],),
            )
        campaign = ws.campaigns.create("promo", audience=ids, channel="sms_test", template="hi", quiet_hours=None)
        assert ws.campaigns.preview(campaign.id).removed("suppressed") == 1
        ws.campaigns.send(campaign.id)
        assert [m.user_id for m in sms.sent] == [ids[1]]
        assert ws.campaigns.unsuppress(ids[0], channel="sms_test") is True
        with ws.read() as tx:
            assert tx.campaigns.suppressed("sms") == []
