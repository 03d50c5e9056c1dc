"""A mini-program mall back-end on FastAPI and siyu.

What a WeChat mini-program shop's server does, in one file:

- ``POST /login`` -- the mini-program calls ``wx.login()`` and sends the code;
  the server exchanges it at WeChat's ``jscode2session`` for the member's
  ``openid`` (and ``unionid``), finds or creates the member, binds them to
  whoever invited them (``invite`` from the shared link), and answers a token.
- ``GET /me`` -- the member page: points, tier and growth, usable coupons.
- ``GET /mall/rewards``, ``POST /mall/redeem`` -- the points mall (积分商城).
- ``GET /coupons``, ``POST /checkout/quote``, ``POST /checkout`` -- the cart:
  the best legal coupon combination, then the order paid with it.
- ``POST /invite`` -- the member's invite link for the 任务宝 invite task.
- ``GET|POST /wecom/callback`` -- the WeCom callback URL (contacts added by
  staff), answered at once and processed after the response.

Each process opens its own workspace when it starts serving (FastAPI's
lifespan), never at import: under ``gunicorn --preload`` or several uvicorn
workers a connection must not cross a fork. The endpoints are ``async`` and
await siyu through :class:`siyu.aio.AsyncWorkspace`, so a slow query never
stalls the event loop. Run it::

    export MALL_DB=sqlite:///mall.db MALL_APPID=wx... MALL_APP_SECRET=... MALL_SESSION_SECRET=...
    python examples/fastapi_mall/mall_app.py --stock      # products, coupons, tiers, rewards (once)
    uvicorn --factory mall_app:app_from_env --app-dir examples/fastapi_mall --workers 4

The tests next to this file (``test_mall_app.py``) run every endpoint with
``httpx.AsyncClient`` against the app, WeChat played by
:class:`siyu.testing.fakes.FakeMiniProgram` on 127.0.0.1.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at
# runtime, and those naming the dependencies built inside create_app must be real objects.
import argparse
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import attrs
import httpx
from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

import siyu
from siyu.aio import AsyncWorkspace
from siyu.errors import ConcurrentWrite, NotFound, PolicyViolation, SiyuError, ValidationError
from siyu.models.referrals import Reward as InviteReward
from siyu.models.referrals import ValidInvite
from siyu.money import to_yuan

WECHAT_API = "https://api.weixin.qq.com"
INVITE_CAMPAIGN = "mall_invite"


@attrs.frozen
class MallSettings:
    """The app's configuration (``from_env`` reads the ``MALL_*`` variables)."""

    appid: str
    app_secret: str
    session_secret: str
    wechat_api: str = WECHAT_API

    @classmethod
    def from_env(cls) -> "MallSettings":
        return cls(appid=os.environ["MALL_APPID"], app_secret=os.environ["MALL_APP_SECRET"],
                   session_secret=os.environ["MALL_SESSION_SECRET"],
                   wechat_api=os.environ.get("MALL_WECHAT_API", WECHAT_API))


# -- request bodies --------------------------------------------------------------------------------
class Login(BaseModel):
    code: str = Field(min_length=1, max_length=128)
    invite: str | None = Field(default=None, max_length=32)


class Line(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(default=1, ge=1, le=999)


class Cart(BaseModel):
    lines: list[Line] = Field(min_length=1, max_length=100)


class Checkout(Cart):
    key: str = Field(min_length=1, max_length=64, description="the client's order id: a retry returns the first order")


class Redeem(BaseModel):
    reward: str
    key: str = Field(min_length=1, max_length=64)


# -- the shop's own logic: plain synchronous functions, each run whole in one worker thread -------------------------
def sign_in(ws: siyu.Workspace, appid: str, openid: str, unionid: str | None, invite: str | None) -> tuple[int, bool]:
    """Find or create the member for a mini-program login; bind a newcomer to their inviter."""
    row: dict[str, Any] = {"wechat_openid": openid, "app": appid, "source": "miniprogram"}
    if unionid:
        row["wechat_unionid"] = unionid
    result = ws.users.upsert_many([row])
    user_id, new = result.ids[0], result.ids[0] in result.created
    if new and invite:
        try:
            ws.referrals.record_scan(invite)
            ws.referrals.bind(user_id, invite)
        except SiyuError:
            pass  # a stale or mistyped invite link must not stop anyone from logging in
    return user_id, new


def profile(ws: siyu.Workspace, user_id: int) -> dict[str, Any]:
    """The member page, read in one snapshot."""
    with ws.read():
        tier = ws.tiers.of(user_id)
        return {
            "user_id": user_id,
            "points": ws.points.balance(user_id),
            "tier": tier.name if tier else None,
            "growth": ws.tiers.growth(user_id),
            "coupons": [c.code for c in ws.coupons.of(user_id, usable=True)],
            "invited_by": ws.referrals.inviter_of(user_id),
        }


def checkout(ws: siyu.Workspace, user_id: int, lines: list[dict[str, Any]], key: str) -> siyu.models.commerce.Order:
    """Quote and record the order in one transaction: the coupons the quote picked cannot
    be spent by a concurrent checkout in between. A retried key returns the first order."""
    with ws.write() as tx:
        # The member's checkouts one at a time (PostgreSQL runs other writers in parallel), so a
        # double tap finds the first attempt's order: its quote would differ now the coupon is spent.
        tx.users.lock(user_id)
        done = next((order for order in ws.orders.of(user_id) if order.key == key), None)
        if done is not None:
            return done
        quote = ws.promotions.quote(user_id, lines)
        return ws.orders.record(user_id, lines, coupon=list(quote.coupon_codes), key=key, channel="miniprogram")


def _quote_json(quote: Any) -> dict[str, Any]:
    return {"subtotal": str(quote.subtotal), "discount": str(quote.discount), "total": str(quote.total),
            "coupons": list(quote.coupon_codes), "explain": quote.explain()}


# -- the web layer ---------------------------------------------------------------------------------------
def _token(secret: str, user_id: int) -> str:
    mac = hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:32]
    return f"{user_id}.{mac}"


def create_app(settings: MallSettings, connect: Callable[[], siyu.Workspace],
               *, callbacks_welcome: str = "欢迎来到小店！") -> FastAPI:
    """The mall app; ``connect`` opens this process's workspace when serving starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ws = connect()
        app.state.aws = AsyncWorkspace(ws)
        app.state.wechat = httpx.AsyncClient(base_url=settings.wechat_api, timeout=5)
        app.state.callbacks = None  # built on the first callback: WeCom may be configured after start
        try:
            yield
        finally:
            await app.state.wechat.aclose()
            await app.state.aws.aclose()

    app = FastAPI(title="mini-program mall", lifespan=lifespan)

    def shop(request: Request) -> AsyncWorkspace:
        aws: AsyncWorkspace = request.app.state.aws
        return aws

    def member(authorization: Annotated[str, Header()] = "") -> int:
        token = authorization.removeprefix("Bearer ").strip()
        user_id, _, _ = token.partition(".")
        if not user_id.isdigit() or not hmac.compare_digest(token, _token(settings.session_secret, int(user_id))):
            raise HTTPException(401, "log in first: POST /login with the code from wx.login()")
        return int(user_id)

    Shop = Annotated[AsyncWorkspace, Depends(shop)]
    Member = Annotated[int, Depends(member)]

    @app.exception_handler(SiyuError)
    async def siyu_error(request: Request, exc: SiyuError) -> JSONResponse:
        # siyu's errors say what was wrong; the class tells the client which kind.
        status = (404 if isinstance(exc, NotFound) else 422 if isinstance(exc, ValidationError)
                  else 403 if isinstance(exc, PolicyViolation) else 409)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    @app.post("/login")
    async def login(body: Login, request: Request, aws: Shop) -> dict[str, Any]:
        params = {"appid": settings.appid, "secret": settings.app_secret, "js_code": body.code,
                  "grant_type": "authorization_code"}
        answer = (await request.app.state.wechat.get("/sns/jscode2session", params=params)).json()
        if "openid" not in answer:
            raise HTTPException(401, f"WeChat refused the login code: {answer.get('errcode')} {answer.get('errmsg')}")
        user_id, new = await aws.run(sign_in, aws.sync, settings.appid, answer["openid"], answer.get("unionid"),
                                     body.invite)
        return {"token": _token(settings.session_secret, user_id), "user_id": user_id, "new": new}

    @app.get("/me")
    async def me(user_id: Member, aws: Shop) -> dict[str, Any]:
        return await aws.run(profile, aws.sync, user_id)

    @app.get("/mall/rewards")
    async def rewards(aws: Shop) -> list[dict[str, Any]]:
        return [{"name": r.name, "kind": r.kind, "points": r.points, "stock": r.stock, "terms": r.terms}
                for r in await aws.points_mall.rewards()]

    @app.post("/mall/redeem")
    async def redeem(body: Redeem, user_id: Member, aws: Shop) -> dict[str, Any]:
        done = await aws.points_mall.redeem(user_id, body.reward, key=f"redeem:{user_id}:{body.key}")
        return {"redemption": done.id, "status": done.status, "points": await aws.points.balance(user_id)}

    @app.get("/coupons")
    async def coupons(user_id: Member, aws: Shop) -> list[dict[str, Any]]:
        return [{"code": c.code, "valid_until": c.valid_until.isoformat() if c.valid_until else None}
                for c in await aws.coupons.of(user_id, usable=True)]

    @app.post("/checkout/quote")
    async def quote(body: Cart, user_id: Member, aws: Shop) -> dict[str, Any]:
        return _quote_json(await aws.promotions.quote(user_id, [line.model_dump() for line in body.lines]))

    @app.post("/checkout")
    async def pay(body: Checkout, user_id: Member, aws: Shop) -> dict[str, Any]:
        lines = [line.model_dump() for line in body.lines]
        async with aws.correlate(f"checkout:{user_id}:{body.key}"):
            for attempt in range(3):
                try:
                    order = await aws.run(checkout, aws.sync, user_id, lines, f"mall:{user_id}:{body.key}")
                    break
                except ConcurrentWrite:  # PostgreSQL failed this side of a collision; nothing was written
                    if attempt == 2:
                        raise
        return {"order": order.id, "total": str(order.total), "discount": str(to_yuan(order.discount_fen)),
                "coupons": list(order.coupon_codes), "points": order.points}

    @app.post("/invite")
    async def invite(user_id: Member, aws: Shop) -> dict[str, str]:
        code = await aws.referrals.invite_code(user_id, campaign=INVITE_CAMPAIGN, channel_state="miniprogram")
        return {"code": code, "path": f"/pages/index/index?invite={code}"}

    @app.api_route("/wecom/callback", methods=["GET", "POST"])
    async def wecom_callback(request: Request, background: BackgroundTasks, aws: Shop) -> Response:
        callbacks = request.app.state.callbacks
        if callbacks is None:  # needs the WeCom channel: SIYU_WECOM_* or ws.channels.get("wecom", ...)
            callbacks = request.app.state.callbacks = await aws.wecom.callbacks(welcome=callbacks_welcome)
        answer = await aws.run(callbacks.handle, request.method, request.url.query, await request.body())
        if answer.status == 200 and request.method == "POST":
            background.add_task(aws.run, callbacks.process_pending)  # after WeCom has its answer
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    return app


def stock_the_shop(ws: siyu.Workspace) -> None:
    """What the shop sells and gives: products, a coupon for newcomers, tiers, points-mall
    rewards and the 任务宝 invite task. Run once per database."""
    with ws.write():
        ws.products.add("TEA-1", "Oolong tea 100 g", price="68", cost="25", role="profit")
        ws.products.add("CUP-2", "Tea cup pair", price="39", cost="12", role="profit")
        ws.coupons.create("新人满99减15", amount="15", threshold="99", valid_days=30)
        ws.coupons.create("积分兑5元券", amount="5", threshold="39", valid_days=30)
        ws.tiers.define("silver", 100, benefits={"points_multiplier": "1.2"})
        ws.tiers.define("gold", 1000, benefits={"points_multiplier": "1.5"})
        ws.points_mall.add_reward("5元券", kind="coupon", points=50, coupon_template="积分兑5元券",
                                  terms="50 积分兑 1 张", scope="满39可用", validity="30 天", per_member=5)
        ws.referrals.campaign(INVITE_CAMPAIGN)
        ws.referrals.tasks.create("invite-3", campaign=INVITE_CAMPAIGN, deadline=ws.now() + timedelta(days=365),
                                  stages=[(3, InviteReward.of_points(100))], valid=ValidInvite(stay_days=0))


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory mall_app:app_from_env``: settings and database from ``MALL_*``."""
    url = os.environ.get("MALL_DB", "sqlite:///mall.db")
    return create_app(MallSettings.from_env(), lambda: siyu.connect(url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="stock the mall's database (run uvicorn to serve it)")
    parser.add_argument("--stock", action="store_true", help="add the products, coupons, tiers and rewards")
    if parser.parse_args().stock:
        with siyu.connect(os.environ.get("MALL_DB", "sqlite:///mall.db")) as workspace:
            stock_the_shop(workspace)
