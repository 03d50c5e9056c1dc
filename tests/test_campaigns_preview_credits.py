"""The preview applies the send's mini-program credit gate (per variant template)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import siyu
from siyu.storage.sql import campaigns as sql_campaigns
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeMiniProgram

KEY = "test-key-0123456789abcdef-0123456789"


@pytest.fixture(autouse=True, params=["by_users", "by_holders"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test through both ways the SQL store answers the gate (a send batch, an audience)."""
    monkeypatch.setattr(sql_campaigns, "_FEW_USERS", 10**9 if request.param == "by_users" else 0)
    return str(request.param)


@pytest.fixture
def fake() -> Iterator[FakeMiniProgram]:
    with FakeMiniProgram(templates={"TPL_A": ["thing1"], "TPL_B": ["thing1"]}) as server:
        yield server


def setup(ws: siyu.Workspace, fake: FakeMiniProgram, credits: list[set[str]]) -> list[int]:
    """One user per entry, with an openid and credits for the templates named."""
    mp = ws.channels.get("miniprogram", appid="wxapp", secret="appsecret", base_url=fake.url)
    ws.channels.install(mp)
    ids = []
    for n, templates in enumerate(credits):
        uid = ws.users.add(wechat_openid=f"o_{n}", app="wxapp").id
        ws.users.consent(uid, purpose="marketing", channel="miniprogram")
        for template in templates:
            mp.add_credit(f"o_{n}", template)  # type: ignore[attr-defined]
        ids.append(uid)
    return ids


def test_preview_counts_only_users_with_a_credit(ws: siyu.Workspace, fake: FakeMiniProgram) -> None:
    ids = setup(ws, fake, [{"TPL_A"}, set(), {"TPL_B"}, {"TPL_A", "TPL_B"}])
    c = ws.campaigns.create("subscribe", audience=ids, channel="miniprogram", template="TPL_A",
                            variants={"A": {"thing1": "上新了"}}, quiet_hours=None)
    preview = ws.campaigns.preview(c.id)
    assert preview.reach == 2 and preview.removed("platform_cap") == 2  # used to be reach 4
    assert ws.campaigns.send(c.id).sent == preview.reach


def test_preview_uses_each_variants_template(ws: siyu.Workspace, fake: FakeMiniProgram, clock: FakeClock) -> None:
    ids = setup(ws, fake, [{"TPL_A"}, {"TPL_B"}, {"TPL_A", "TPL_B"}, set()])
    c = ws.campaigns.create(
        "ab", audience=ids, channel="miniprogram", template="TPL_A", schedule=clock.now + timedelta(days=1),
        variants={"A": {"thing1": "上新了"}, "B": {"template": "TPL_B", "thing1": "限时折扣"}}, quiet_hours=None,
    )
    # Before a variant is chosen any of them may be dealt: only users able to take both are sure.
    assert ws.campaigns.preview(c.id).reach == 1
    ws.campaigns.send(c.id, variant="B")  # scheduled: armed with B, nothing sent yet
    preview = ws.campaigns.preview(c.id)
    assert preview.reach == 2
    clock.advance(days=1)
    assert sum(r.sent for r in ws.campaigns.run_due()) == preview.reach
    assert sorted(m["touser"] for m in fake.sent) == ["o_1", "o_2"]


def test_a_credit_on_a_second_openid_does_not_count(ws: siyu.Workspace, fake: FakeMiniProgram) -> None:
    ids = setup(ws, fake, [set(), {"TPL_A"}])
    ws.users.link(ids[0], "wechat_openid", "o_other", app="wxother")
    ws.channels.get("miniprogram").add_credit("o_other", "TPL_A")  # type: ignore[attr-defined]
    c = ws.campaigns.create("s", audience=ids, channel="miniprogram", template="TPL_A",
                            variants={"A": {"thing1": "x"}}, quiet_hours=None)
    assert ws.campaigns.preview(c.id).reach == 1
    assert ws.campaigns.send(c.id).sent == 1


def test_sealed_openids_are_matched_through_the_blind_index(fake: FakeMiniProgram, clock: FakeClock,
                                                            tmp_path: object) -> None:
    with siyu.connect(f"sqlite:///{tmp_path}/sealed.db", secret_key=KEY, clock=clock) as ws:
        ids = setup(ws, fake, [{"TPL_A"}, set(), {"TPL_A"}])
        c = ws.campaigns.create("s", audience=ids, channel="miniprogram", template="TPL_A",
                                variants={"A": {"thing1": "x"}}, quiet_hours=None)
        assert ws.campaigns.preview(c.id).reach == 2
        assert ws.campaigns.send(c.id).sent == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(credits=st.lists(st.sets(st.sampled_from(["TPL_A", "TPL_B"])), min_size=1, max_size=8),
       variant=st.sampled_from(["A", "B"]))
def test_preview_reach_is_what_the_send_sends(fake: FakeMiniProgram, clock: FakeClock, credits: list[set[str]],
                                              variant: str) -> None:
    fake.sent.clear()
    with siyu.connect("memory://", clock=clock) as ws:
        ids = setup(ws, fake, credits)
        c = ws.campaigns.create(
            "c", audience=ids, channel="miniprogram", template="TPL_A", quiet_hours=None,
            variants={"A": {"thing1": "x"}, "B": {"template": "TPL_B", "thing1": "y"}},
            schedule=clock.now + timedelta(minutes=1),
        )
        ws.campaigns.send(c.id, variant=variant)
        reach = ws.campaigns.preview(c.id).reach
        clock.advance(minutes=1)
        assert sum(r.sent for r in ws.campaigns.run_due()) == reach
        clock.advance(minutes=-1)
