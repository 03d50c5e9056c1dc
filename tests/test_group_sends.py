"""Group mass messages against the fake WeCom server (wecom-scrm.md §9, items 22-25)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import siyu
from siyu.channels.wecom import WeComClient
from siyu.community.sends import DeliveryStatus
from siyu.community.wecom import GroupApi, GroupSync
from siyu.errors import CapExceeded, ChannelError, InvalidMessage
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeWeComGroups


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeComGroups]:
    with FakeWeComGroups(clock=clock) as server:
        yield server


@pytest.fixture
def api(fake: FakeWeComGroups, clock: FakeClock) -> Iterator[GroupApi]:
    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, now=lambda: clock().timestamp(),
                         sleep=lambda s: None)
    yield GroupApi(client)
    client.close()


@pytest.fixture
def groups(ws: siyu.Workspace, fake: FakeWeComGroups, api: GroupApi) -> list[str]:
    for chat, owner in (("g1", "li"), ("g2", "li"), ("g3", "wang")):
        fake.add_group(chat, owner)
    GroupSync(ws.groups, api).groups(["li", "wang"])
    return ["g1", "g2", "g3"]


def test_22_refused_before_http_and_error_codes(api: GroupApi, fake: FakeWeComGroups, groups: list[str]) -> None:
    for kwargs in ({"sender": ""}, {"sender": "li", "chats": [f"c{i}" for i in range(2001)]},
                   {"sender": "li", "text": "好" * 1334}, {"sender": "li", "attachments": [{}] * 10}):
        chats = kwargs.pop("chats", ["g1"])
        with pytest.raises(InvalidMessage):
            api.add_group_msg(chats, text=kwargs.pop("text", "hi"), **kwargs)  # type: ignore[arg-type]
    assert fake.calls("add_msg_template") == []
    with pytest.raises(ChannelError) as none:
        api.add_group_msg(["g3"], sender="li", text="hi")  # li owns no such group
    assert none.value.code == 41048
    fake.fail("add_msg_template", 41063)
    with pytest.raises(ChannelError) as busy:
        api.add_group_msg(["g1"], sender="li", text="hi")
    assert busy.value.code == 41063 and busy.value.retryable


def test_one_message_per_owner_and_each_group_once(ws: siyu.Workspace, api: GroupApi, fake: FakeWeComGroups,
                                                   groups: list[str]) -> None:
    rows = ws.groups.sends.send(api, groups, text="周末福利 🎁", key="weekend-1")
    assert {(d.chat_id, d.owner, d.status) for d in rows} == {
        ("g1", "li", DeliveryStatus.PENDING), ("g2", "li", DeliveryStatus.PENDING),
        ("g3", "wang", DeliveryStatus.PENDING)}
    bodies = sorted((c.json()["sender"], c.json()["chat_id_list"]) for c in fake.calls("add_msg_template"))
    assert bodies == [("li", ["g1", "g2"]), ("wang", ["g3"])]
    ws.groups.sends.send(api, groups, text="周末福利 🎁", key="weekend-1")  # a rerun sends nothing
    assert len(fake.calls("add_msg_template")) == 2


def test_a_failed_call_can_be_retried_and_nothing_is_recorded(ws: siyu.Workspace, api: GroupApi,
                                                               fake: FakeWeComGroups, groups: list[str]) -> None:
    fake.fail("add_msg_template", 60011)
    with pytest.raises(ChannelError):
        ws.groups.sends.send(api, ["g1"], text="hi", key="k")
    assert ws.groups.sends.deliveries("k") == []
    assert ws.groups.sends.send(api, ["g1"], text="hi", key="k")[0].status is DeliveryStatus.PENDING


def test_frequency_rule_for_groups(ws: siyu.Workspace, api: GroupApi, groups: list[str], clock: FakeClock) -> None:
    clock.set(datetime(2026, 2, 1, 2, 0, tzinfo=UTC))  # February: 28 a month
    for n in range(28):
        ws.groups.sends.send(api, ["g1"], text=f"#{n}", key=f"k{n}")
    (extra,) = ws.groups.sends.send(api, ["g1"], text="one more", key="k28")
    assert extra.status is DeliveryStatus.SKIPPED
    clock.set(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    assert ws.groups.sends.send(api, ["g1"], text="March", key="k29")[0].status is DeliveryStatus.PENDING


def test_23_group_message_list_windows(api: GroupApi, fake: FakeWeComGroups, groups: list[str]) -> None:
    from siyu.channels.wecom import WeComClient

    assert isinstance(api.client, WeComClient)
    list(api.client.get_groupmsg_list_v2(1_790_000_000, 1_790_000_000 + 90 * 86_400, chat_type="group",
                                         limit=500))
    bodies = [c.json() for c in fake.calls("get_groupmsg_list_v2")]
    assert len(bodies) == 3
    assert all(b["end_time"] - b["start_time"] <= 31 * 86_400 and b["limit"] == 100 for b in bodies)


def test_24_statuses_are_read_back(ws: siyu.Workspace, api: GroupApi, fake: FakeWeComGroups,
                                   groups: list[str]) -> None:
    rows = ws.groups.sends.send(api, ["g1", "g2"], text="hi", key="k")
    msgid = rows[0].msgid
    assert msgid is not None
    assert api.tasks(msgid) == [{"userid": "li", "status": 0}]
    fake.confirm(msgid, statuses={"g2": 3})
    assert api.tasks(msgid)[0]["status"] == 2
    result = {d.chat_id: d.status for d in ws.groups.sends.refresh(api, "k")}
    assert result == {"g1": DeliveryStatus.SENT, "g2": DeliveryStatus.CAP_REACHED}
    assert {r["chat_id"] for r in api.send_results(msgid, "li")} == {"g1", "g2"}


def test_25_a_fourth_reminder_within_24_hours_is_refused(ws: siyu.Workspace, api: GroupApi, fake: FakeWeComGroups,
                                                         groups: list[str], clock: FakeClock) -> None:
    msgid = ws.groups.sends.send(api, ["g1"], text="hi", key="k")[0].msgid
    assert msgid is not None
    assert [ws.groups.sends.remind(api, msgid) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(CapExceeded):
        ws.groups.sends.remind(api, msgid)
    assert len(fake.calls("remind_groupmsg_send")) == 3
    clock.advance(hours=24, seconds=1)
    assert ws.groups.sends.remind(api, msgid) == 1
