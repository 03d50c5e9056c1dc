"""Customer groups, join ways and welcome templates against the fake WeCom server
(wecom-scrm.md §9, items 13-21)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest

import siyu
from siyu.channels.wecom import ContactEvent, WeComClient
from siyu.channels.wecom.crypto import parse_xml
from siyu.community import EventJoinScene, GroupPurpose, GroupStatus, JoinScene, JoinWay, MemberType, QuitScene
from siyu.community.wecom import GroupApi, GroupSync
from siyu.errors import ChannelError, InvalidMessage, NotFound
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeWeComGroups

A_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeComGroups]:
    with FakeWeComGroups(corp_id="wwcorp", secret="s3cret", clock=clock) as server:
        yield server


@pytest.fixture
def api(fake: FakeWeComGroups, clock: FakeClock) -> Iterator[GroupApi]:
    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, now=lambda: clock().timestamp(),
                         sleep=lambda s: None)
    yield GroupApi(client)
    client.close()


@pytest.fixture
def wecom(ws: siyu.Workspace, fake: FakeWeComGroups):  # type: ignore[no-untyped-def]
    channel = ws.channels.get("wecom", corp_id=fake.corp_id, secret="s3cret", base_url=fake.url, sender="a",
                              token="123456", encoding_aes_key=A_KEY)
    yield channel
    channel.client.close()


def chat_event(chat_id: str, change: str, at: int = 1_795_334_460, items: list[str] | None = None,
               csv: str | None = None, **fields: object) -> ContactEvent:
    extra = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>"
                    for k, v in fields.items())
    if items is not None:
        extra += "<MemChangeList>" + "".join(f"<Item><![CDATA[{i}]]></Item>" for i in items) + "</MemChangeList>"
    if csv is not None:
        extra += f"<MemChangeList><![CDATA[{csv}]]></MemChangeList>"
    return ContactEvent.from_xml(
        f"<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat_id}]]></ChatId>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType>{extra}</xml>")


@pytest.fixture
def group(ws: siyu.Workspace, fake: FakeWeComGroups, api: GroupApi) -> str:
    ws.users.add(wecom_external_userid="wmA")
    fake.add_group("chat1", "owner1", name="新品体验群")
    fake.join("chat1", ["wmA", "wmB"], join_scene=3, state="jw-store")
    fake.join("chat1", ["staff2"], type=1, join_scene=1, invitor="owner1")
    GroupSync(ws.groups, api).groups(["owner1"])
    return "chat1"


# -- 13: group transfers --------------------------------------------------------------------------
def test_13_group_transfer_reports_each_chat(api: GroupApi, fake: FakeWeComGroups) -> None:
    fake.add_group("g1", "gone")
    fake.add_group("g2", "active")
    fake.add_group("g3", "active2", customer_group=False)
    fake.resign_member("gone")
    assert api.transfer(["g1", "g2"], "heir", resigned=True) == {"g1": 0, "g2": 90500}
    assert fake.groups["g1"]["owner"] == "heir"
    assert api.transfer(["g3"], "heir", resigned=False) == {"g3": 90501}
    calls = len(fake.requests)
    for bad in ([], [f"c{i}" for i in range(101)]):
        with pytest.raises(InvalidMessage):
            api.transfer(bad, "heir", resigned=True)
    assert len(fake.requests) == calls


# -- 14-15: listing and reading groups ---------------------------------------------------------------
def test_14_list_always_filters_by_owner_and_pages(api: GroupApi, fake: FakeWeComGroups) -> None:
    owners = [f"o{i:03}" for i in range(150)]
    for i, owner in enumerate(owners):
        fake.add_group(f"c{i:03}", owner)
    found = [g["chat_id"] for g in api.chats(owners, limit=5000)]
    assert len(found) == 150
    bodies = [c.json() for c in fake.calls("groupchat/list")]
    assert {len(b["owner_filter"]["userid_list"]) for b in bodies} == {100, 50}
    assert {b["limit"] for b in bodies} == {1000}
    with pytest.raises(InvalidMessage):
        list(api.chats([]))
    with pytest.raises(ChannelError) as refused:
        api.client.call("POST", "externalcontact/groupchat/list", body={"limit": 10})
    assert refused.value.code == 81017


def test_15_group_detail_is_parsed(ws: siyu.Workspace, group: str, api: GroupApi) -> None:
    g = ws.groups.get(group)
    assert (g.name, g.owner, g.member_version) == ("新品体验群", "owner1", "v3")
    members = {m.member_id: m for m in ws.groups.members(group)}
    assert members["wmA"].type == MemberType.CUSTOMER and members["staff2"].type == MemberType.STAFF
    assert (members["wmA"].join_scene, members["wmA"].state) == (JoinScene.QR_CODE, "jw-store")
    assert (members["staff2"].join_scene, members["staff2"].invitor) == (JoinScene.INVITED, "owner1")
    assert members["wmA"].nickname == "name-wmA"  # name only with need_name=1
    assert members["wmA"].user_id == ws.users.find(wecom_external_userid="wmA").id  # type: ignore[union-attr]
    assert "name" not in api.client.call("POST", "externalcontact/groupchat/get",
                                         body={"chat_id": group})["group_chat"]["member_list"][0]
    uid = members["wmA"].user_id
    assert [x.chat_id for x in ws.groups.of(uid)] == [group]  # type: ignore[arg-type]


# -- 16-18: change_external_chat ---------------------------------------------------------------------------
def test_16_delta_applied_when_versions_match(ws: siyu.Workspace, group: str, fake: FakeWeComGroups,
                                              wecom) -> None:  # type: ignore[no-untyped-def]
    handler = ws.wecom.callbacks(inline=True)
    current = fake.join(group, ["wmC", "wmD"], join_scene=3)
    reads = len(fake.calls("groupchat/get"))
    out = handler.process(chat_event(group, "update", UpdateDetail="add_member", JoinScene=3, MemChangeCnt=2,
                                     items=["wmC", "wmD"], LastMemVer="v3", CurMemVer=current))
    assert "add_member" in out
    assert len(fake.calls("groupchat/get")) == reads  # no re-read
    assert ws.groups.get(group).member_version == current
    assert {"wmC", "wmD"} <= {m.member_id for m in ws.groups.members(group)}
    assert handler.process(chat_event(group, "update", UpdateDetail="add_member", JoinScene=3,
                                      items=["wmC", "wmD"], LastMemVer="v3", CurMemVer=current)) == "duplicate"
    later = fake.join(group, ["wmE"])
    fake.join(group, ["wmF"])  # an event we never got: versions now disagree
    out = handler.process(chat_event(group, "update", at=1_795_334_465, UpdateDetail="add_member", JoinScene=0,
                                     items=["wmF"], LastMemVer=later, CurMemVer="v5"))
    assert out.endswith("re-read")
    assert len(fake.calls("groupchat/get")) == reads + 1
    assert {"wmE", "wmF"} <= {m.member_id for m in ws.groups.members(group)}


def test_a_re_read_waits_for_wecom_outside_the_write(ws: siyu.Workspace, group: str, fake: FakeWeComGroups,
                                                     wecom, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    handler = ws.wecom.callbacks(inline=True)
    seen: list[bool] = []
    real = GroupApi.get

    def get(self: GroupApi, chat_id: str) -> dict[str, object]:
        seen.append(ws.in_transaction())
        return real(self, chat_id)

    monkeypatch.setattr(GroupApi, "get", get)
    fake.join(group, ["wmE"])
    now = fake.join(group, ["wmF"])  # versions disagree: a re-read
    assert handler.process(chat_event(group, "update", at=1_795_334_465, UpdateDetail="add_member",
                                      items=["wmF"], LastMemVer="v-other", CurMemVer=now)).endswith("re-read")
    assert seen == [False]
    fake.join(group, ["wmG"])
    fake.fail("groupchat/get", 60011, times=1)
    out = handler.process(chat_event(group, "update", at=1_795_334_470, UpdateDetail="add_member",
                                     items=["wmG"], LastMemVer="v-other", CurMemVer="v9"))
    assert "re-read failed" in out
    assert "wmG" not in {m.member_id for m in ws.groups.members(group)}
    out = handler.process(chat_event(group, "update", at=1_795_334_471, UpdateDetail="del_member",
                                     items=["wmE"], LastMemVer="v9", CurMemVer="v10"))
    assert out.endswith("re-read")  # the stored version still disagreed: the next event heals the group
    assert "wmG" in {m.member_id for m in ws.groups.members(group) if m.active}


def test_17_scene_enums_are_separate_and_quits_are_recorded(ws: siyu.Workspace, group: str,
                                                            fake: FakeWeComGroups, wecom) -> None:  # type: ignore[no-untyped-def]
    assert (EventJoinScene.INVITED, EventJoinScene.QR_CODE) == (0, 3)
    assert (JoinScene.INVITED, JoinScene.INVITE_LINK, JoinScene.QR_CODE) == (1, 2, 3)
    handler = ws.wecom.callbacks(inline=True)
    version = fake.quit(group, ["wmB"])
    handler.process(chat_event(group, "update", UpdateDetail="del_member", QuitScene=1, items=["wmB"],
                               LastMemVer="v3", CurMemVer=version))
    (gone,) = [m for m in ws.groups.members(group, active=False) if not m.active]
    assert (gone.member_id, gone.quit_scene) == ("wmB", QuitScene.REMOVED)
    stats = {s.chat_id: s for s in ws.groups.stats(ws.now() - timedelta(days=1), ws.now() + timedelta(days=1))}
    assert (stats[group].size, stats[group].quits) == (3, 1)


def test_18_member_lists_in_both_forms_create_dismiss_and_owner(ws: siyu.Workspace, group: str,
                                                               fake: FakeWeComGroups, wecom) -> None:  # type: ignore[no-untyped-def]
    assert parse_xml("<xml><MemChangeList><Item>a</Item><Item>b</Item></MemChangeList></xml>")[
        "MemChangeList"] == "a,b"
    assert parse_xml("<xml><MemChangeList><![CDATA[a,b]]></MemChangeList></xml>")["MemChangeList"] == "a,b"
    handler = ws.wecom.callbacks(inline=True)
    version = fake.quit(group, ["wmA", "wmB"])
    handler.process(chat_event(group, "update", UpdateDetail="del_member", QuitScene=0, csv="wmA,wmB",
                               LastMemVer="v3", CurMemVer=version))
    assert {m.member_id for m in ws.groups.members(group)} == {"owner1", "staff2"}
    fake.add_group("chat2", "owner1")
    assert handler.process(chat_event("chat2", "create")).endswith("re-read")
    assert ws.groups.get("chat2").owner == "owner1"
    fake.groups[group]["owner"] = "staff2"
    handler.process(chat_event(group, "update", at=1_795_334_469, UpdateDetail="change_owner"))
    assert ws.groups.get(group).owner == "staff2"
    handler.process(chat_event("chat2", "dismiss"))
    assert ws.groups.get("chat2").status is GroupStatus.DISMISSED
    assert handler.process(chat_event("unknown", "dismiss")).startswith("group unknown")
    with pytest.raises(NotFound):
        ws.groups.get("unknown")


def test_purpose_and_roles(ws: siyu.Workspace, group: str) -> None:
    ws.groups.set_purpose(group, "service")
    assert ws.groups.find(purpose=GroupPurpose.SERVICE)[0].chat_id == group
    uid = ws.users.find(wecom_external_userid="wmA").id  # type: ignore[union-attr]
    assert ws.groups.set_role(group, uid, "core").role == "core"
    assert ws.groups.set_role(group, "staff2", "expert").role == "expert"
    with pytest.raises(siyu.errors.ValidationError):
        ws.groups.set_purpose(group, "chat")


# -- 19-21: join ways and welcome templates ------------------------------------------------------------------
def test_19_join_way_limits_and_qr_code(api: GroupApi, fake: FakeWeComGroups) -> None:
    base = JoinWay(config_id="", scene=2, chat_ids=("c1",), state="store-1", room_base_name="销售客服群",
                   room_base_id=10)
    bad = [{"chat_ids": ()}, {"chat_ids": tuple(f"c{i}" for i in range(6))}, {"state": "s" * 31},
           {"room_base_name": "名" * 41}, {"scene": 3}]
    for change in bad:
        with pytest.raises(InvalidMessage):
            api.add_join_way(attrs.evolve(base, **change))  # type: ignore[arg-type]
    assert fake.calls("add_join_way") == []
    way = api.add_join_way(base)
    assert way.config_id == "jw1" and way.qr_code and way.qr_code.endswith("jw1.png")
    mini = api.add_join_way(attrs.evolve(base, scene=1))
    assert mini.qr_code is None


def test_20_update_sends_the_whole_configuration(api: GroupApi, fake: FakeWeComGroups) -> None:
    way = api.add_join_way(JoinWay(config_id="", scene=2, chat_ids=("c1", "c2"), state="store-1"))
    api.update_join_way(way.config_id, remark="春季活动")
    stored = fake.join_ways[way.config_id]
    assert (stored["chat_id_list"], stored["state"], stored["remark"]) == (["c1", "c2"], "store-1", "春季活动")


def test_21_welcome_template_bytes_empty_and_cap(api: GroupApi, fake: FakeWeComGroups) -> None:
    with pytest.raises(InvalidMessage, match="3000"):
        api.add_welcome_template(text="好" * 1001)
    with pytest.raises(InvalidMessage):
        api.add_welcome_template()
    assert fake.calls("group_welcome_template/add") == []
    assert api.add_welcome_template(text="欢迎 %NICKNAME% 入群") == "tpl1"
    for _ in range(99):
        api.add_welcome_template(text="hi")
    with pytest.raises(ChannelError) as cap:
        api.add_welcome_template(text="one too many")
    assert cap.value.code == 41055


def test_segments_select_by_group_purpose_owner_and_relations(ws: siyu.Workspace, group: str) -> None:
    uid = ws.users.find(wecom_external_userid="wmA").id  # type: ignore[union-attr]
    other = ws.users.add().id
    assert ws.segments.users(f"in_group.{group} = 1") == [uid]
    assert ws.segments.users("groups >= 1") == [uid]
    assert ws.segments.users("group_purpose.service >= 1") == []
    ws.groups.set_purpose(group, "service")
    assert ws.segments.users("group_purpose.service >= 1") == [uid]
    ws.staff.follow(other, "li")
    ws.staff.follow(uid, "wang")
    ws.staff.follow(uid, "li")
    assert ws.segments.users("relations >= 2") == [uid]
    assert ws.segments.users("owned_by.li = 1") == [other]
    with pytest.raises(siyu.errors.SegmentSyntaxError):
        ws.segments.users("group_purpose.chat >= 1")
