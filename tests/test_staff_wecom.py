"""Staff, relations and transfers against the fake WeCom server (wecom-scrm.md §9, items 1-12)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

import siyu
from siyu.channels.wecom import ContactEvent, WeComClient
from siyu.errors import InvalidMessage
from siyu.staff import RelationStatus, TransferStatus
from siyu.staff.sync import StaffSync
from siyu.staff.transfers import RESULT_STATUSES
from siyu.staff.wecom import StaffApi
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeWeComScrm

A_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeComScrm]:
    with FakeWeComScrm(corp_id="wwcorp", secret="s3cret", clock=clock) as server:
        yield server


@pytest.fixture
def api(fake: FakeWeComScrm, clock: FakeClock) -> Iterator[StaffApi]:
    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, now=lambda: clock().timestamp(),
                         sleep=lambda s: None)
    yield StaffApi(client)
    client.close()


@pytest.fixture
def wecom(ws: siyu.Workspace, fake: FakeWeComScrm):  # type: ignore[no-untyped-def]
    channel = ws.channels.get("wecom", corp_id=fake.corp_id, secret="s3cret", base_url=fake.url, sender="a",
                              token="123456", encoding_aes_key=A_KEY)
    yield channel
    channel.client.close()


def event(change: str, member: str, ext: str, at: int = 1_700_000_000, **extra: str) -> ContactEvent:
    fields = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in extra.items())
    return ContactEvent.from_xml(
        f"<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{member}]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID>{fields}</xml>")


# -- 1-5: staff and relations -------------------------------------------------------------------
def test_1_follow_user_list_is_a_bare_get(api: StaffApi, fake: FakeWeComScrm) -> None:
    fake.relate("a", "ext1")
    fake.add_member("b")
    assert api.follow_users() == ["a", "b"]
    call = fake.calls("get_follow_user_list")[-1]
    assert (call.method, set(call.query), call.body) == ("GET", {"access_token"}, b"")


def test_2_six_hundred_followers_come_in_two_pages(api: StaffApi, fake: FakeWeComScrm) -> None:
    for i in range(600):
        fake.relate(f"m{i:03}", "ext1")
    data = api.contact("ext1")
    assert len(data["follow_user"]) == 600
    assert len({f["userid"] for f in data["follow_user"]}) == 600
    assert [c.query.get("cursor") for c in fake.calls("externalcontact/get")] == [None, "500"]


def test_2b_sync_of_one_customer_yields_every_relation(ws: siyu.Workspace, api: StaffApi,
                                                      fake: FakeWeComScrm) -> None:
    for i in range(600):
        fake.relate(f"m{i:03}", "ext1")
    uid = StaffSync(ws.staff, ws.users, api).customer("ext1")
    assert len(ws.staff.relations(uid, active=True)) == 600


def test_3_two_followers_are_two_relations_and_one_deletion_is_not_lost(
        ws: siyu.Workspace, api: StaffApi, fake: FakeWeComScrm, wecom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    fake.relate("a", "ext1", remark="张姐", add_way=1, state="store", tags=("高意向",))
    fake.relate("b", "ext1", remark="老客户", add_way=16, state="link", oper_userid="ext1")
    report = StaffSync(ws.staff, ws.users, api).relations(["a", "b"])
    assert (report.customers_created, report.relations) == (1, 2)
    uid = ws.users.find(wecom_external_userid="ext1").id  # type: ignore[union-attr]
    a, b = sorted(ws.staff.relations(uid), key=lambda r: r.staff)
    assert (a.remark, a.add_way, a.state, a.tags) == ("张姐", 1, "store", ("et高意向",))
    assert (b.remark, b.add_way, b.state, b.oper_userid) == ("老客户", 16, "link", "ext1")
    handler = ws.wecom.callbacks(inline=True)
    now = int(clock().timestamp()) + 1
    assert "1 active relation(s) left" in handler.process(event("del_follow_user", "b", "ext1", at=now))
    assert ws.lifecycle.stage(uid) != "lost"
    assert ws.staff.relation_status(uid, "b") is RelationStatus.DELETED_BY_CUSTOMER
    assert handler.process(event("del_follow_user", "a", "ext1", at=now + 1)) == f"user {uid} lost"
    assert ws.lifecycle.stage(uid) == "lost"


def test_4_who_deleted_whom(ws: siyu.Workspace, wecom) -> None:  # type: ignore[no-untyped-def]
    handler = ws.wecom.callbacks(inline=True)
    for ext in ("e1", "e2", "e3"):
        handler.process(event("add_external_contact", "a", ext, at=1_700_000_000))
        handler.process(event("add_external_contact", "b", ext, at=1_700_000_000))
    handler.process(event("del_external_contact", "a", "e1", at=1_700_000_010))
    handler.process(event("del_follow_user", "a", "e2", at=1_700_000_010))
    handler.process(event("del_external_contact", "a", "e3", at=1_700_000_010, Source="DELETE_BY_TRANSFER"))
    status = {ext: ws.staff.relation_status(ws.users.find(wecom_external_userid=ext).id, "a")  # type: ignore[union-attr]
              for ext in ("e1", "e2", "e3")}
    assert status == {"e1": RelationStatus.DELETED_BY_STAFF, "e2": RelationStatus.DELETED_BY_CUSTOMER,
                      "e3": RelationStatus.TRANSFERRED}


def test_5_batch_limit_is_clamped_and_pairs_merge_into_one_customer(ws: siyu.Workspace, api: StaffApi,
                                                                    fake: FakeWeComScrm) -> None:
    for i in range(150):
        fake.relate("a", f"ext{i}")
    fake.relate("b", "ext7")
    items = list(api.contacts_by_user(["a", "b"], limit=500))
    assert len(items) == 151
    assert {c.json()["limit"] for c in fake.calls("batch/get_by_user")} == {100}
    StaffSync(ws.staff, ws.users, api).relations(["a", "b"])
    assert ws.users.count() == 150
    uid = ws.users.find(wecom_external_userid="ext7").id  # type: ignore[union-attr]
    assert sorted(r.staff for r in ws.staff.relations(uid)) == ["a", "b"]


def test_an_interrupted_sync_resumes_without_duplicates(ws: siyu.Workspace, api: StaffApi,
                                                        fake: FakeWeComScrm) -> None:
    for i in range(120):
        fake.relate("a", f"ext{i}")
    sync = StaffSync(ws.staff, ws.users, api)
    pages = iter(api.contacts_by_user(["a"]))
    for _ in range(100):
        item = next(pages)
        sync.apply(item["external_contact"], item["follow_info"])
    fake.fail("batch/get_by_user", 60011, times=1)  # the second page fails
    with pytest.raises(siyu.errors.ChannelError):
        next(pages)
    sync.relations(["a"])
    assert ws.users.count() == 120
    assert len(ws.staff.customers("a")) == 120


def test_a_backlog_processed_together_ends_like_one_by_one(clock: FakeClock) -> None:
    t = 1_795_000_000
    events = [event("add_external_contact", "a", "e1", at=t), event("add_external_contact", "b", "e1", at=t + 1),
              event("add_external_contact", "a", "e2", at=t + 2), event("add_external_contact", "a", "e3", at=t + 2),
              event("del_follow_user", "a", "e1", at=t + 5), event("del_follow_user", "a", "e1", at=t + 5),
              event("del_external_contact", "a", "e2", at=t + 6), event("del_follow_user", "a", "nobody", at=t + 6),
              event("del_external_contact", "a", "e3", at=t + 7, Source="DELETE_BY_TRANSFER"),
              event("del_follow_user", "b", "e1", at=t + 8), event("del_follow_user", "b", "e1", at=t + 3),
              event("add_external_contact", "c", "e2", at=t + 9), event("del_follow_user", "c", "e2", at=t + 10)]

    def outcome(many: bool) -> tuple[list[str], list[object]]:
        with siyu.connect("memory://", clock=clock) as ws:
            done = ws.wecom.process_many(events) if many else [ws.wecom.process(e) for e in events]
            users = {ext: ws.users.find(wecom_external_userid=ext).id for ext in ("e1", "e2", "e3")}  # type: ignore[union-attr]
            state = [(ext, [(r.staff, r.status, r.changed_at) for r in ws.staff.relations(u)], ws.staff.owner(u),
                      ws.staff.owner_history(u), ws.lifecycle.stage(u), ws.tags.of(u))
                     for ext, u in users.items()]
            return done, state

    one_by_one, many = outcome(False), outcome(True)
    assert many == one_by_one
    assert many[0][5] == "duplicate" and many[0][7] == "ignored: unknown customer"
    assert many[0][4] == "user 1 unfollowed by a (customer); 1 active relation(s) left"


def test_a_refused_event_in_a_backlog_is_undone_alone(ws: siyu.Workspace) -> None:
    t = 1_795_000_000
    ws.wecom.process_many([event("add_external_contact", m, "e1", at=t) for m in ("a", "b", "c")])
    done = ws.wecom.process_many([event("del_follow_user", "a", "e1", at=t + 1),
                                  event("del_follow_user", "x" * 65, "e1", at=t + 1),  # not a WeCom userid
                                  event("del_follow_user", "b", "e1", at=t + 1)])
    assert done[1].startswith("error: userid") and "left" in done[0] and "left" in done[2]
    uid = ws.users.find(wecom_external_userid="e1").id  # type: ignore[union-attr]
    assert [r.staff for r in ws.staff.relations(uid, active=True)] == ["c"]


# -- 6-12: transfers ------------------------------------------------------------------------------
@pytest.fixture
def shop(ws: siyu.Workspace, api: StaffApi, fake: FakeWeComScrm) -> dict[str, int]:
    for ext in ("e1", "e2", "e3"):
        fake.relate("a", ext)
    fake.add_member("c")
    StaffSync(ws.staff, ws.users, api).relations(["a"])
    ws.staff.add("c")
    ws.staff.transfers.connect(api)
    return {ext: ws.users.find(wecom_external_userid=ext).id for ext in ("e1", "e2", "e3")}  # type: ignore[union-attr]


def test_6_refused_before_any_http(api: StaffApi, fake: FakeWeComScrm) -> None:
    with pytest.raises(InvalidMessage, match="100"):
        api.transfer_customer("a", "c", [f"e{i}" for i in range(101)])
    with pytest.raises(InvalidMessage, match="200"):
        api.transfer_customer("a", "c", ["e1"], message="好" * 201)
    with pytest.raises(InvalidMessage, match="same member"):
        api.transfer_customer("a", "a", ["e1"])
    assert fake.calls("transfer_customer") == []


def test_6b_the_service_splits_batches_of_more_than_100(ws: siyu.Workspace, api: StaffApi,
                                                        fake: FakeWeComScrm) -> None:
    for i in range(150):
        fake.relate("a", f"x{i}")
    StaffSync(ws.staff, ws.users, api).relations(["a"])
    ws.staff.add("c")
    ws.staff.transfers.connect(api)
    results = ws.staff.transfer(ws.staff.customers("a"), from_="a", to="c")
    assert {t.status for t in results} == {TransferStatus.PENDING}
    assert [len(c.json()["external_userid"]) for c in fake.calls("transfer_customer")] == [100, 50]


def test_7_a_third_transfer_in_90_days_is_refused_per_customer(ws: siyu.Workspace, shop: dict[str, int],
                                                               fake: FakeWeComScrm) -> None:
    fake.transfer_history("e1", "x", "a", days_ago=10)
    fake.transfer_history("e1", "y", "x", days_ago=20)
    results = ws.staff.transfer([shop["e1"], shop["e2"]], from_="a", to="c")
    assert [(t.status, t.errcode) for t in results] == [(TransferStatus.QUOTA_EXHAUSTED, 40128),
                                                        (TransferStatus.PENDING, None)]


def test_7b_siyu_counts_its_own_transfers_before_calling(ws: siyu.Workspace, shop: dict[str, int],
                                                         fake: FakeWeComScrm, clock: FakeClock) -> None:
    for to, back in (("c", "a"), ("a", "c")):
        ws.staff.add(to)
        ws.staff.transfer([shop["e1"]], from_=back if to == "a" else "a", to=to)
        clock.advance(hours=25)
        ws.staff.transfers.poll()
    calls = len(fake.calls("transfer_customer"))
    assert ws.staff.transfer([shop["e1"]], from_="a", to="c")[0].status is TransferStatus.QUOTA_EXHAUSTED
    assert len(fake.calls("transfer_customer")) == calls


def test_8_pending_then_done_after_24_hours(ws: siyu.Workspace, shop: dict[str, int], clock: FakeClock) -> None:
    (t,) = ws.staff.transfer([shop["e1"]], from_="a", to="c", message="您好，我是新的专属顾问")
    assert t.status is TransferStatus.PENDING
    assert t.takeover_at == clock() + timedelta(hours=24)
    clock.advance(hours=1)
    assert ws.staff.transfers.poll() == []  # status 2: still waiting
    assert ws.staff.owner(shop["e1"]) == "a"
    clock.advance(hours=24)
    (done,) = ws.staff.transfers.poll()
    assert (done.status, done.raw_status) == (TransferStatus.DONE, 1)
    assert ws.staff.owner(shop["e1"]) == "c"
    assert {r.staff: r.status for r in ws.staff.relations(shop["e1"])} == {
        "a": RelationStatus.TRANSFERRED, "c": RelationStatus.ACTIVE}
    assert ws.lifecycle.stage(shop["e1"]) != "lost"


def test_9_result_statuses_and_an_unknown_one(ws: siyu.Workspace, shop: dict[str, int], fake: FakeWeComScrm,
                                              clock: FakeClock) -> None:
    assert {k: str(v) for k, v in RESULT_STATUSES.items()} == {
        1: "done", 2: "pending", 3: "refused", 4: "cap_reached", 5: "no_record"}
    ws.staff.transfer([shop["e1"], shop["e2"], shop["e3"]], from_="a", to="c")
    fake.refuse("e1")
    fake.cap("e2")
    clock.advance(hours=25)
    fake.inject(path="transfer_result", json={"errcode": 0, "errmsg": "ok", "customer": [
        {"external_userid": "e3", "status": 9, "takeover_time": 0}], "next_cursor": ""})
    assert ws.staff.transfers.poll() == []
    assert ws.staff.transfers.of(shop["e3"])[0].raw_status == 9
    changed = {t.user_id: t.status for t in ws.staff.transfers.poll()}
    assert changed == {shop["e1"]: TransferStatus.REFUSED, shop["e2"]: TransferStatus.CAP_REACHED,
                       shop["e3"]: TransferStatus.DONE}
    assert ws.staff.owner(shop["e1"]) == "a"  # a refused in-service transfer leaves the customer


def test_10_per_customer_refusals(ws: siyu.Workspace, shop: dict[str, int], fake: FakeWeComScrm,
                                  api: StaffApi) -> None:
    assert api.resigned_transfer_customer("a", "c", ["e1"]) == {"e1": 40097}
    fake.relate("z", "e9")
    assert api.transfer_customer("a", "c", ["e9"]) == {"e9": 40131}
    assert api.transfer_customer("a", "c", ["e2"]) == {"e2": 0}
    assert api.transfer_customer("a", "c", ["e2"]) == {"e2": 40129}
    results = ws.staff.transfer([shop["e2"], shop["e3"]], from_="a", to="c", resigned=True)
    assert [t.status for t in results] == [TransferStatus.NOT_RESIGNED] * 2


def test_11_transfer_fail_event_is_reconciled_through_transfer_result(
        ws: siyu.Workspace, shop: dict[str, int], fake: FakeWeComScrm, wecom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    ws.staff.transfer([shop["e1"]], from_="a", to="c")
    fake.refuse("e1")
    clock.advance(hours=25)
    handler = ws.wecom.callbacks(inline=True)
    outcome = handler.process(event("transfer_fail", "c", "e1", FailReason="customer_refused"))
    assert outcome.endswith("refused")
    assert fake.calls("transfer_result")[-1].json()["handover_userid"] == "a"
    other = event("transfer_fail", "c", "e2", FailReason="customer_limit_exceed")
    assert other.fields["FailReason"] == "customer_limit_exceed"
    assert handler.process(other).endswith("no pending transfer")


def test_11c_transfer_result_is_read_outside_the_write(ws: siyu.Workspace, shop: dict[str, int],
                                                       fake: FakeWeComScrm, wecom, clock: FakeClock,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ws.staff.transfer([shop["e1"], shop["e2"]], from_="a", to="c")
    fake.refuse("e1")
    clock.advance(hours=25)
    seen: list[bool] = []
    real = StaffApi.transfer_result

    def transfer_result(self: StaffApi, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        seen.append(ws.in_transaction())
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StaffApi, "transfer_result", transfer_result)
    done = ws.wecom.process_many([event("transfer_fail", "c", "e1", FailReason="customer_refused"),
                                  event("transfer_fail", "c", "e1", FailReason="customer_refused")])
    assert done[0].endswith("refused") and done[1] == "duplicate"
    assert seen and not any(seen)
    fake.fail("externalcontact/transfer_result", 60011, times=1)
    out = ws.wecom.process(event("transfer_fail", "c", "e2", at=1_700_000_100, FailReason="customer_refused"))
    assert out.endswith("poll() reads it")
    assert [t.status for t in ws.staff.transfers.of(shop["e2"])] == [TransferStatus.PENDING]


def test_11b_resigned_inheritance_and_its_refusal(ws: siyu.Workspace, shop: dict[str, int], fake: FakeWeComScrm,
                                                  clock: FakeClock) -> None:
    fake.resign_member("a")
    ws.staff.resign("a")
    results = ws.staff.transfer([shop["e1"], shop["e2"]], from_="a", to="c", resigned=True)
    assert [t.kind for t in results] == ["resigned", "resigned"]
    fake.refuse("e2")
    clock.advance(hours=25)
    ws.staff.transfers.poll()
    assert ws.staff.owner(shop["e1"]) == "c"
    assert ws.lifecycle.stage(shop["e2"]) == "lost"  # a refused inheritance loses the customer


def test_12_unassigned_list_is_iterated_to_the_end(api: StaffApi, fake: FakeWeComScrm) -> None:
    for i in range(25):
        fake.relate("gone", f"u{i}")
    fake.resign_member("gone")
    with pytest.raises(InvalidMessage):
        list(api.unassigned(page_size=1001))
    assert fake.calls("get_unassigned_list") == []
    items = list(api.unassigned(page_size=10))
    assert len(items) == 25
    assert len(fake.calls("get_unassigned_list")) == 3
