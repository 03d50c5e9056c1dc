"""The mall's endpoints through httpx.AsyncClient, WeChat and WeCom played by local fakes.

Run alone with ``pytest examples/fastapi_mall``; siyu's own suite runs them too
(tests/test_example_fastapi_mall.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mall_app import MallSettings, create_app, stock_the_shop

import siyu
from siyu.channels.wecom.crypto import signature
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeMiniProgram, FakeWeCom

APPID, APP_SECRET = "wxmall", "app-secret"
TOKEN, AES_KEY = "callback-token", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


@pytest.fixture
def wechat() -> Iterator[FakeMiniProgram]:
    with FakeMiniProgram(appid=APPID, secret=APP_SECRET) as fake:
        yield fake


@pytest.fixture
def wecom(clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id="ww-mall", secret="contact-secret", clock=clock) as fake:
        yield fake


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An SQLite file, and a fresh PostgreSQL schema when SIYU_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mall.db'}"
        return
    server = os.environ.get("SIYU_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("set SIYU_TEST_POSTGRES_URL=postgresql://... to run the mall on PostgreSQL too")
    from siyu.testing.postgres import drop_schema, with_schema

    schema_url = with_schema(server, f"mall_{uuid.uuid4().hex[:12]}")
    yield schema_url
    drop_schema(schema_url)


@pytest.fixture
async def client(url: str, clock: FakeClock, wechat: FakeMiniProgram,
                 wecom: FakeWeCom) -> AsyncIterator[httpx.AsyncClient]:

    def connect() -> siyu.Workspace:
        ws = siyu.connect(url, clock=clock)
        ws.channels.get("wecom", corp_id="ww-mall", secret="contact-secret", base_url=wecom.url, token=TOKEN,
                        encoding_aes_key=AES_KEY)
        return ws

    with connect() as ws:
        stock_the_shop(ws)
    settings = MallSettings(appid=APPID, app_secret=APP_SECRET, session_secret="s3cret", wechat_api=wechat.url)
    app = create_app(settings, connect)
    async with app.router.lifespan_context(app):  # ASGITransport does not send lifespan events itself
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mall.test") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


async def log_in(client: httpx.AsyncClient, wechat: FakeMiniProgram, openid: str,
                 invite: str | None = None) -> dict[str, Any]:
    response = await client.post("/login", json={"code": wechat.login_code(openid), "invite": invite})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    client.headers["authorization"] = f"Bearer {answer['token']}"
    return answer


def as_member(answer: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {answer['token']}"}


async def test_login_creates_the_member_once(client: httpx.AsyncClient, wechat: FakeMiniProgram) -> None:
    first = await log_in(client, wechat, "oMEMBER0001")
    again = await log_in(client, wechat, "oMEMBER0001")
    assert first["new"] and not again["new"] and first["user_id"] == again["user_id"]
    me = (await client.get("/me")).json()
    assert me == {"user_id": first["user_id"], "points": 0, "tier": None, "growth": 0, "coupons": [],
                  "invited_by": None}
    used = await client.post("/login", json={"code": "made-up"})
    assert used.status_code == 401 and "40029" in used.json()["detail"]
    assert (await client.get("/me", headers={"authorization": "Bearer 1.forged"})).status_code == 401


async def test_checkout_quotes_and_redeems_the_coupon(client: httpx.AsyncClient, wechat: FakeMiniProgram) -> None:
    member = await log_in(client, wechat, "oMEMBER0002")
    ws: siyu.Workspace = client.app.state.aws.sync  # type: ignore[attr-defined]
    ws.coupons.issue("新人满99减15", member["user_id"])
    cart = {"lines": [{"sku": "TEA-1", "qty": 1}, {"sku": "CUP-2", "qty": 1}]}

    quote = (await client.post("/checkout/quote", json=cart)).json()
    assert (quote["subtotal"], quote["discount"], quote["total"]) == ("107.00", "15.00", "92.00")
    paid = await client.post("/checkout", json={**cart, "key": "cart-1"})
    assert paid.status_code == 200, paid.text
    order = paid.json()
    assert order["total"] == "92.00" and order["coupons"] == quote["coupons"] and order["points"] == 92
    retry = (await client.post("/checkout", json={**cart, "key": "cart-1"})).json()
    assert retry["order"] == order["order"]  # the client's retry: one order, one coupon spent

    me = (await client.get("/me")).json()
    assert me["points"] == 92 and me["coupons"] == [] and me["growth"] > 0
    unknown = await client.post("/checkout", json={"lines": [{"sku": "NOPE"}], "key": "cart-2"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "NotFound"


async def test_points_mall_redeems_points_for_a_coupon(client: httpx.AsyncClient, wechat: FakeMiniProgram) -> None:
    member = await log_in(client, wechat, "oMEMBER0003")
    rewards = (await client.get("/mall/rewards")).json()
    assert [r["name"] for r in rewards] == ["5元券"]
    poor = await client.post("/mall/redeem", json={"reward": "5元券", "key": "r1"})
    assert poor.status_code == 409 and poor.json()["error"] == "InsufficientPoints"

    ws: siyu.Workspace = client.app.state.aws.sync  # type: ignore[attr-defined]
    ws.points.earn(member["user_id"], 120, reason="sign-in streak", key="streak")
    done = (await client.post("/mall/redeem", json={"reward": "5元券", "key": "r2"})).json()
    assert done["status"] == "issued" and done["points"] == 70
    assert len((await client.get("/coupons")).json()) == 1


async def test_invite_link_binds_the_newcomer(client: httpx.AsyncClient, wechat: FakeMiniProgram) -> None:
    inviter = await log_in(client, wechat, "oINVITER01")
    link = (await client.post("/invite")).json()
    assert link["path"].endswith(f"invite={link['code']}")
    friend = await log_in(client, wechat, "oFRIEND001", invite=link["code"])
    assert (await client.get("/me")).json()["invited_by"] == inviter["user_id"]
    returning = await log_in(client, wechat, "oFRIEND001", invite="BADCODE1")  # a returning member: no rebinding
    assert returning["user_id"] == friend["user_id"]


async def test_concurrent_checkouts_spend_each_coupon_once(client: httpx.AsyncClient,
                                                           wechat: FakeMiniProgram) -> None:
    """Many members paying at once, each twice with the same key (a double tap)."""
    members = [await log_in(client, wechat, f"oBUSY{n:04d}") for n in range(20)]
    ws: siyu.Workspace = client.app.state.aws.sync  # type: ignore[attr-defined]
    ws.coupons.issue("新人满99减15", [m["user_id"] for m in members])
    cart = {"lines": [{"sku": "TEA-1", "qty": 2}]}
    calls = [client.post("/checkout", json={**cart, "key": "tap"}, headers=as_member(m))
             for m in members for _ in range(2)]
    answers = [r.json() for r in await asyncio.gather(*calls)]
    failed = [a for a in answers if "total" not in a]
    assert not failed, failed
    assert {a["total"] for a in answers} == {"121.00"}
    assert len({a["order"] for a in answers}) == len(members)
    for m in members:
        [order] = ws.orders.of(m["user_id"])
        assert len(order.coupon_codes) == 1


async def test_wecom_callback_is_answered_then_processed(client: httpx.AsyncClient, clock: FakeClock,
                                                         wecom: FakeWeCom) -> None:
    ws: siyu.Workspace = client.app.state.aws.sync  # type: ignore[attr-defined]
    ws.wecom.add_contact_way(state="shop_poster", user=["xiaolin"], tags=["source/门店海报"], welcome="欢迎！")
    crypto = ws.channels.installed("wecom").crypto()  # type: ignore[union-attr]
    now = int(clock.now.timestamp())
    xml = ("<xml><ToUserName><![CDATA[ww-mall]]></ToUserName>"
           f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_contact]]></Event>"
           "<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[xiaolin]]></UserID>"
           "<ExternalUserID><![CDATA[wmGUEST0001]]></ExternalUserID><State><![CDATA[shop_poster]]></State>"
           f"<WelcomeCode><![CDATA[{wecom.issue_welcome_code()}]]></WelcomeCode></xml>")
    encrypted = crypto.encrypt(xml)
    query = f"msg_signature={signature(TOKEN, str(now), 'n1', encrypted)}&timestamp={now}&nonce=n1"
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    forged = await client.post(f"/wecom/callback?{query.replace('n1', 'n2')}", content=body)
    assert forged.status_code == 403
    answer = await client.post(f"/wecom/callback?{query}", content=body)
    assert answer.status_code == 200 and answer.text == "success"
    # The background task ran after the answer (httpx's ASGITransport awaits it).
    user = ws.users.find(wecom_external_userid="wmGUEST0001")
    assert user is not None and "source/门店海报" in ws.tags.of(user.id)
    assert len(wecom.welcomes) == 1
