"""The fake mini-program, WeCom and SMTP servers refuse what WeChat, WeCom and real mail servers refuse."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import siyu
from siyu.channels import Message, Status
from siyu.channels.wecom import WeComClient
from siyu.errors import ChannelError
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeMiniProgram, FakeSmtp, FakeWeCom, self_signed_context

# -- mini-program subscribe messages ------------------------------------------------------------------
TEMPLATES = {"TPL_SHIPPED": ["thing1", "time2"], "TPL_POINTS": ["phrase1", "number2"]}


@pytest.fixture
def wechat() -> Iterator[FakeMiniProgram]:
    with FakeMiniProgram(templates=TEMPLATES) as fake:
        yield fake


def subscribe_send(fake: FakeMiniProgram, body: dict[str, Any]) -> dict[str, Any]:
    token = httpx.post(
        fake.url + "/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": "wxapp", "secret": "appsecret", "force_refresh": False},
    ).json()["access_token"]
    answer: dict[str, Any] = httpx.post(
        fake.url + "/cgi-bin/message/subscribe/send", params={"access_token": token}, json=body
    ).json()
    return answer


SHIPPED = {
    "touser": "o1",
    "template_id": "TPL_SHIPPED",
    "data": {"thing1": {"value": "订单已发货"}, "time2": {"value": "2026-11-23 10:00"}},
}


def test_mini_program_accepts_a_correct_send(wechat: FakeMiniProgram) -> None:
    assert subscribe_send(wechat, SHIPPED)["errcode"] == 0 and len(wechat.sent) == 1


def test_mini_program_refuses_an_unknown_template(wechat: FakeMiniProgram) -> None:
    for template in ("TPL_OTHER", "", None):
        answer = subscribe_send(wechat, {**SHIPPED, "template_id": template})
        assert answer["errcode"] == 40037
    assert wechat.sent == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (None, "thing1"),
        ({}, "thing1"),
        ({"thing1": {"value": "订单已发货"}}, "time2"),
        ({"thing1": {"value": ""}, "time2": {"value": "2026-11-23"}}, "thing1"),
        ({"thing1": "订单已发货", "time2": {"value": "2026-11-23"}}, "thing1"),
        ({"thing1": {"value": "一" * 21}, "time2": {"value": "2026-11-23"}}, "thing1"),
    ],
)
def test_mini_program_refuses_data_the_template_does_not_accept(
    wechat: FakeMiniProgram, data: Any, field: str
) -> None:
    answer = subscribe_send(wechat, {**SHIPPED, "data": data})
    assert answer["errcode"] == 47003 and f"data.{field}.value" in answer["errmsg"]
    assert wechat.sent == []


@pytest.mark.parametrize(
    ("phrase", "number", "ok"), [("已到账", "120", True), ("ok", "120", False), ("已到账", "12a", False)]
)
def test_mini_program_checks_values_by_key_type(wechat: FakeMiniProgram, phrase: str, number: str, ok: bool) -> None:
    body = {"touser": "o1", "template_id": "TPL_POINTS",
            "data": {"phrase1": {"value": phrase}, "number2": {"value": number}}}
    assert (subscribe_send(wechat, body)["errcode"] == 0) is ok


def test_mini_program_refuses_a_send_without_touser(wechat: FakeMiniProgram) -> None:
    assert subscribe_send(wechat, {k: v for k, v in SHIPPED.items() if k != "touser"})["errcode"] == 40003


def test_siyu_reports_the_field_wechat_refused_and_keeps_the_credit(
    ws: siyu.Workspace, wechat: FakeMiniProgram
) -> None:
    mp = ws.channels.get("miniprogram", appid="wxapp", secret="appsecret", base_url=wechat.url)
    mp.add_credit("o1", "TPL_SHIPPED")  # type: ignore[attr-defined]
    result = mp.send([Message("o1", template="TPL_SHIPPED", variables={"thing1": "订单已发货"})])[0]
    assert result.status is Status.REJECTED and "time2" in result.detail
    assert mp.credits("o1", "TPL_SHIPPED") == 1  # type: ignore[attr-defined]


# -- WeCom welcome codes ------------------------------------------------------------------------------
@pytest.fixture
def wecom_clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


@pytest.fixture
def wecom(wecom_clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id="ww1", secret="s", clock=wecom_clock) as fake:
        yield fake


def welcome(fake: FakeWeCom, code: str) -> int:
    client = WeComClient("ww1", "s", base_url=fake.url, sleep=lambda s: None)
    try:
        client.send_welcome_msg(code, text="欢迎")
    except ChannelError as exc:
        return int(exc.code)  # type: ignore[arg-type]
    return 0


def test_wecom_welcome_code_works_within_20_seconds_once(wecom: FakeWeCom, wecom_clock: FakeClock) -> None:
    code = wecom.issue_welcome_code()
    wecom_clock.advance(seconds=20)
    assert welcome(wecom, code) == 0 and len(wecom.welcomes) == 1
    assert welcome(wecom, code) == 41051


def test_wecom_welcome_code_expires_after_20_seconds(wecom: FakeWeCom, wecom_clock: FakeClock) -> None:
    code = wecom.issue_welcome_code()
    wecom_clock.advance(seconds=21)
    assert welcome(wecom, code) == 41050 and wecom.welcomes == []


def test_wecom_refuses_a_welcome_code_it_never_issued(wecom: FakeWeCom) -> None:
    assert welcome(wecom, "MADE-UP") == 41050 and wecom.welcomes == []


def test_wecom_refuses_a_welcome_without_a_code(wecom: FakeWeCom) -> None:
    token = httpx.get(wecom.url + "/cgi-bin/gettoken", params={"corpid": "ww1", "corpsecret": "s"}).json()
    answer = httpx.post(
        wecom.url + "/cgi-bin/externalcontact/send_welcome_msg",
        params={"access_token": token["access_token"]},
        json={"text": {"content": "欢迎"}},
    ).json()
    assert answer["errcode"] == 41049


def test_wecom_code_issued_for_a_past_event(wecom: FakeWeCom, wecom_clock: FakeClock) -> None:
    event_time = wecom_clock.now.timestamp() - 25
    assert welcome(wecom, wecom.issue_welcome_code("OLD", at=event_time)) == 41050
    assert welcome(wecom, wecom.issue_welcome_code("FRESH", at=event_time + 10)) == 0


# -- SMTP ---------------------------------------------------------------------------------------------
def _auth_plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_smtp_refuses_auth_on_a_plaintext_session() -> None:
    with FakeSmtp(users={"shop": "pw"}) as fake, smtplib.SMTP("127.0.0.1", fake.port, timeout=5) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # not even offered without TLS
        code, text = smtp.docmd("AUTH", "PLAIN " + _auth_plain("shop", "pw"))
        assert (code, text) == (538, b"5.7.11 Encryption required for requested authentication mechanism")


def test_smtp_without_tls_never_takes_a_password(ws: siyu.Workspace) -> None:
    with FakeSmtp(users={"shop": "pw"}, domains=["example.cn"]) as fake:
        mail = ws.channels.get("email", host="127.0.0.1", port=fake.port, security="none", username="shop",
                               password="pw", from_addr="shop@example.cn")
        result = mail.send([Message("li@example.cn", subject="s", text="t")])[0]
        assert result.status is Status.FAILED_PERMANENT and result.code == "config"
        assert fake.messages == []


def test_smtp_is_not_an_open_relay(ws: siyu.Workspace) -> None:
    with FakeSmtp(domains=["example.cn"]) as fake:
        mail = ws.channels.get("email", host="127.0.0.1", port=fake.port, security="none",
                               from_addr="shop@example.cn")
        local, remote = mail.send([Message("li@example.cn", subject="s", text="t"),
                                   Message("li@elsewhere.example", subject="s", text="t")])
        assert local.ok
        assert remote.status is Status.REJECTED and remote.code == "554" and "Relay access denied" in remote.detail
        assert [to for to, _ in fake.messages] == [["li@example.cn"]]


def test_smtp_relays_for_a_client_that_logged_in(ws: siyu.Workspace) -> None:
    server_ctx, client_ctx = self_signed_context()
    with FakeSmtp(tls_context=server_ctx, users={"shop": "pw"}, domains=["example.cn"]) as fake:
        mail = ws.channels.get("email", host="127.0.0.1", port=fake.port, security="starttls", username="shop",
                               password="pw", from_addr="shop@example.cn", ssl_context=client_ctx)
        assert mail.send([Message("li@elsewhere.example", subject="s", text="t")])[0].ok
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=5) as smtp:  # no login: refused before any recipient
            smtp.starttls(context=client_ctx)
            smtp.ehlo()
            assert smtp.docmd("MAIL", "FROM:<shop@example.cn>")[0] == 530
        assert len(fake.messages) == 1


def test_fake_miniprogram_jscode2session_exchanges_a_code_once() -> None:
    with FakeMiniProgram(appid="wxmall", secret="s3cret") as wechat:
        code = wechat.login_code("oOPENID0001", unionid="uUNION1")

        def exchange(js_code: str, secret: str = "s3cret") -> dict[str, object]:
            params = {"appid": "wxmall", "secret": secret, "js_code": js_code, "grant_type": "authorization_code"}
            answer: dict[str, object] = httpx.get(f"{wechat.url}/sns/jscode2session", params=params).json()
            return answer

        assert exchange(code, secret="wrong")["errcode"] == 40125
        first = exchange(code)
        assert first["openid"] == "oOPENID0001" and first["unionid"] == "uUNION1" and first["session_key"]
        assert exchange(code)["errcode"] == 40163  # a code is good once
        assert exchange("made-up")["errcode"] == 40029
