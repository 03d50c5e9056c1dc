"""Handing a leaver's customers and groups over, by distribution policy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

import siyu
from siyu.channels.wecom import WeComClient
from siyu.community.wecom import GroupApi, GroupSync
from siyu.errors import ValidationError
from siyu.staff import TransferStatus
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeWeComGroups


@pytest.fixture
def shop(ws: siyu.Workspace) -> list[int]:
    ws.staff.add("li", store="徐汇店")
    ws.staff.add("wang", store="徐汇店")
    ws.staff.add("zhao", store="静安店")
    ws.staff.add("chen", store="静安店")
    users = ws.users.add_many([{} for _ in range(9)])
    for uid in users:
        ws.staff.follow(uid, "li")
    for uid in ws.users.add_many([{} for _ in range(4)]):
        ws.staff.follow(uid, "zhao")  # zhao is busy already
    return users


def test_round_robin_deals_in_turn(ws: siyu.Workspace, shop: list[int]) -> None:
    ws.staff.resign("li")
    result = ws.staff.hand_over("li", to=["wang", "zhao", "chen"], policy="round_robin")
    assert {t.status for t in result.customers} == {TransferStatus.DONE}
    assert Counter(ws.staff.owner(u) for u in shop) == {"wang": 3, "zhao": 3, "chen": 3}
    assert ws.staff.customers("li") == []


def test_least_loaded_evens_out_the_load(ws: siyu.Workspace, shop: list[int]) -> None:
    ws.staff.hand_over("li", to=["wang", "zhao", "chen"], policy="least_loaded")
    assert ws.staff.relation_counts() == {"chen": 5, "wang": 4, "zhao": 4}  # ties go by userid


def test_same_store_keeps_customers_in_the_store(ws: siyu.Workspace, shop: list[int]) -> None:
    ws.staff.hand_over("li", policy="same_store")
    assert {ws.staff.owner(u) for u in shop} == {"wang"}
    ws.staff.add("solo", store="新店")
    ws.staff.follow(shop[0], "solo")
    with pytest.raises(ValidationError, match="新店"):
        ws.staff.hand_over("solo", policy="same_store")
    with pytest.raises(ValidationError):
        ws.staff.hand_over("wang", policy="alphabetical")


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeComGroups]:
    with FakeWeComGroups(clock=clock) as server:
        yield server


def test_groups_follow_through_wecom(ws: siyu.Workspace, shop: list[int], fake: FakeWeComGroups,
                                     clock: FakeClock) -> None:
    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, now=lambda: clock().timestamp())
    api = GroupApi(client)
    for chat in ("g1", "g2", "g3"):
        fake.add_group(chat, "li")
    GroupSync(ws.groups, api).groups(["li"])
    fake.resign_member("li")
    fake.groups["g3"]["customer_group"] = False
    ws.staff.resign("li")
    result = ws.staff.hand_over("li", to=["wang", "chen"], policy="round_robin", group_api=api)
    assert result.groups == {"g1": ("wang", 0), "g2": ("chen", 0), "g3": ("wang", 90501)}
    assert [c.json()["chat_id_list"] for c in fake.calls("groupchat/transfer")] == [["g1", "g3"], ["g2"]]
    assert (ws.groups.get("g1").owner, ws.groups.get("g3").owner) == ("wang", "li")
    client.close()
