"""Property: any interleaving of WeCom contact callbacks, duplicated and out of order,
leaves the same relations as a simple model, and a customer with an active relation is never lost."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.channels.wecom import ContactEvent
from siyu.staff import RelationStatus
from siyu.testing import FakeClock

CUSTOMERS = ("c1", "c2")
STAFF = ("a", "b", "c")
KINDS = ("add", "del_follow_user", "del_external_contact", "transfer")
STATUS = {"add": RelationStatus.ACTIVE, "del_follow_user": RelationStatus.DELETED_BY_CUSTOMER,
          "del_external_contact": RelationStatus.DELETED_BY_STAFF, "transfer": RelationStatus.TRANSFERRED}
RANK = {"add": 0, "transfer": 1, "del_external_contact": 2, "del_follow_user": 3}
T0 = 1_800_000_000


def change_type(kind: str) -> str:
    return {"add": "add_external_contact", "transfer": "del_external_contact"}.get(kind, kind)


# WeCom sends one event per (change, member, customer, second): two with the same key are one delivery.
events = st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(STAFF), st.sampled_from(KINDS),
                            st.integers(0, 6)), min_size=1, max_size=25,
                  unique_by=lambda e: (e[0], e[1], change_type(e[2]), e[3]))


def xml(customer: str, member: str, kind: str, second: int) -> ContactEvent:
    change = change_type(kind)
    source = "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>" if kind == "transfer" else ""
    return ContactEvent.from_xml(
        f"<xml><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{T0 + second}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{member}]]></UserID>"
        f"<ExternalUserID><![CDATA[{customer}]]></ExternalUserID>{source}</xml>")


def model(applied: list[tuple[str, str, str, int]]) -> dict[tuple[str, str], RelationStatus]:
    """Per pair, the newest event wins; at the same second the stronger one (a deletion over an add)."""
    best: dict[tuple[str, str], tuple[int, int, str]] = {}
    for customer, member, kind, second in applied:
        key = (second, RANK[kind], kind)
        best[(customer, member)] = max(best.get((customer, member), key), key)
    return {pair: STATUS[kind] for pair, (_, _, kind) in best.items()}


@settings(deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_callbacks_in_any_order_converge_to_the_model(batch: list[tuple[str, str, str, int]], rnd) -> None:  # type: ignore[no-untyped-def]
    delivered = batch + rnd.sample(batch, k=len(batch) // 2)  # some arrive twice
    rnd.shuffle(delivered)
    clock = FakeClock(datetime.fromtimestamp(T0 + 100, UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        for customer in CUSTOMERS:  # customers exist already (an add for an unknown one creates it)
            ws.users.add(wecom_external_userid=customer)
        for item in delivered:
            ws.wecom.process(xml(*item))
        ids = {c: ws.users.find(wecom_external_userid=c).id for c in CUSTOMERS}  # type: ignore[union-attr]
        stored = {(c, r.staff): r.status for c in CUSTOMERS for r in ws.staff.relations(ids[c])}
        assert stored == model(batch)
        for c in CUSTOMERS:
            if ws.staff.relations(ids[c], active=True):
                assert ws.lifecycle.stage(ids[c]) != "lost"
                assert ws.staff.owner(ids[c]) in {r.staff for r in ws.staff.relations(ids[c], active=True)}


# -- groups: member changes delivered in any order, twice or not at all, converge to WeCom's state --
class _Truth:
    """WeCom's side of one group: its members and version, and a client answering groupchat/get."""

    def __init__(self) -> None:
        self.members: list[str] = ["owner"]
        self.version = 0

    def call(self, method: str, path: str, *, body: dict[str, object] | None = None,
             **_: object) -> dict[str, object]:
        assert path == "externalcontact/groupchat/get"
        return {"group_chat": {"chat_id": "c1", "owner": "owner", "member_version": f"v{self.version}",
                               "member_list": [{"userid": m, "type": 1 if m == "owner" else 2} for m in self.members]}}


changes = st.lists(st.tuples(st.sampled_from(["join", "quit"]), st.sets(st.sampled_from(["wmA", "wmB", "wmC"]),
                                                                       min_size=1, max_size=2)), max_size=8)


@settings(deadline=None)
@given(changes, st.randoms(use_true_random=False))
def test_group_changes_in_any_order_converge_to_wecom(steps: list[tuple[str, set[str]]], rnd) -> None:  # type: ignore[no-untyped-def]
    from siyu.community.callbacks import apply_chat_event

    truth = _Truth()
    with siyu.connect("memory://", clock=FakeClock(datetime.fromtimestamp(T0, UTC))) as ws:
        apply_chat_event(ws.groups, truth, {"Event": "change_external_chat", "ChangeType": "create",  # type: ignore[arg-type]
                                            "ChatId": "c1", "CreateTime": str(T0)})
        events = []
        for n, (kind, who) in enumerate(steps):
            changed = sorted(who - set(truth.members)) if kind == "join" else sorted(who & set(truth.members))
            if not changed:
                continue
            last = f"v{truth.version}"
            truth.version += 1
            truth.members = (truth.members + changed) if kind == "join" else [m for m in truth.members
                                                                               if m not in changed]
            events.append({"Event": "change_external_chat", "ChangeType": "update", "ChatId": "c1",
                           "UpdateDetail": "add_member" if kind == "join" else "del_member",
                           "MemChangeList": ",".join(changed), "LastMemVer": last, "CurMemVer": f"v{truth.version}",
                           "CreateTime": str(T0 + n + 1), "QuitScene": "0", "JoinScene": "3"})
        delivered = events + rnd.sample(events, k=len(events) // 2)
        rnd.shuffle(delivered)
        for fields in delivered:
            apply_chat_event(ws.groups, truth, fields)  # type: ignore[arg-type]
        assert sorted(m.member_id for m in ws.groups.members("c1")) == sorted(truth.members)
        assert ws.groups.get("c1").member_version == f"v{truth.version}" or not events
