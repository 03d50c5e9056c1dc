"""Offline acceptance items of the channel reference that the other channel tests
left open (numbers refer to its section 5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import siyu
from siyu.channels import Message, Status
from siyu.channels.sms import SmsTemplate
from siyu.testing import FakeClock, RecordingChannel
from siyu.testing.fakes import FakeAliyunSms, FakeMiniProgram, FakeWeCom

FIXTURE = Path(__file__).parent / "fixtures" / "channels" / "wecom_change_external_contact.txt"
A_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


@pytest.fixture
def wecom_fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id="wx49f0ab532d5d035a", secret="s3cret") as server:
        server.issue_welcome_code("CODE9")
        yield server


@pytest.fixture
def wecom(ws: siyu.Workspace, wecom_fake: FakeWeCom):  # type: ignore[no-untyped-def]
    return ws.channels.get("wecom", corp_id=wecom_fake.corp_id, secret="s3cret", base_url=wecom_fake.url,
                           sender="zhangsan", token="123456", encoding_aes_key=A_KEY, sleep=lambda s: None)


def _fixture() -> dict[str, str]:
    lines = [ln for ln in FIXTURE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


# -- 13: no WelcomeCode -> skipped with a logged reason ------------------------------------------


def test_13_welcome_without_a_welcome_code_is_skipped_with_a_reason(
    ws: siyu.Workspace, wecom, wecom_fake: FakeWeCom, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[ext_console]]></ExternalUserID><State><![CDATA[s1]]></State></xml>"
    )
    envelope = wecom.crypto().encrypt_message(xml, "nonce1", "1700000000")
    encrypt = envelope.split("<![CDATA[")[1].split("]]>")[0]
    signature = envelope.split("<![CDATA[")[2].split("]]>")[0]
    clock.set(datetime.fromtimestamp(1700000001, UTC))
    handler = ws.wecom.callbacks(welcome="欢迎", inline=True)
    query = f"msg_signature={signature}&timestamp=1700000000&nonce=nonce1"
    response = handler.handle("POST", query, f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode())
    assert (response.status, response.body) == (200, b"success")
    assert "no WelcomeCode" in handler.log[-1][1]
    assert wecom_fake.calls("send_welcome_msg") == [] and ws.users.find(wecom_external_userid="ext_console")


# -- 19: send_welcome_msg body is {welcome_code, text, attachments} ----------------------------------


def test_19_welcome_body_carries_text_and_attachments(wecom, wecom_fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    link = {"msgtype": "link", "link": {"title": "双11", "url": "https://shop.example.cn/11"}}
    wecom.client.send_welcome_msg("CODE9", text="欢迎", attachments=[link])
    body = wecom_fake.calls("send_welcome_msg")[0].json()
    assert body == {"welcome_code": "CODE9", "text": {"content": "欢迎"}, "attachments": [link]}


# -- 23: mini-program 40001 (MP meaning: token not latest) refreshes exactly once -------------------


@pytest.fixture
def mp_fake() -> Iterator[FakeMiniProgram]:
    with FakeMiniProgram(templates={"TPL1": ["thing1"]}) as fake:
        yield fake


def _sub(openid: str = "o1") -> Message:
    return Message(openid, template="TPL1", variables={"thing1": "订单已发货"})


def test_23_miniprogram_40001_refreshes_once_then_reports(ws: siyu.Workspace, mp_fake: FakeMiniProgram) -> None:
    mp = ws.channels.get("miniprogram", appid="wxapp", secret="appsecret", base_url=mp_fake.url)
    mp.add_credit("o1", "TPL1", 3)
    assert mp.send(_sub())[0].ok
    mp_fake.valid_tokens.clear()  # the cached token is no longer the latest: 40001
    assert mp.send(_sub())[0].ok
    assert len(mp_fake.calls("stable_token")) == 2
    original = mp_fake.respond

    def always_40001(request):  # type: ignore[no-untyped-def]
        if request.path == "/cgi-bin/message/subscribe/send":
            mp_fake.valid_tokens.clear()
        return original(request)

    mp_fake.respond = always_40001  # type: ignore[method-assign]
    sends = len(mp_fake.calls("subscribe/send"))
    result = mp.send(_sub())[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "40001"
    assert len(mp_fake.calls("stable_token")) == 3  # one refresh for this send, no loop
    assert len(mp_fake.calls("subscribe/send")) == sends + 2
    assert mp.credits("o1", "TPL1") == 1  # not delivered: the credit came back


# -- 30: direct marketing sends honour the suppression list and legal holds -------------------------


def test_30_direct_marketing_send_to_a_suppressed_or_held_user_is_blocked(ws: siyu.Workspace) -> None:
    rec = ws.channels.install(RecordingChannel(name="sms_rec", consent_channel="sms"))
    assert isinstance(rec, RecordingChannel)
    ids = [ws.users.add(phone=f"1380013800{i}").id for i in range(4)]
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="*")
    ws.campaigns.suppress(ids[0], channel="sms", reason="TD")
    ws.campaigns.suppress(ids[1], channel="wecom", reason="other medium")
    ws.privacy.hold(ids[2], reason="litigation")
    results = rec.send([Message(f"+86 1380013800{i}", text="促销", user_id=uid, purpose="marketing")
                        for i, uid in enumerate(ids)])
    assert [r.code for r in results] == ["suppressed", None, "suppressed", None]
    assert results[0].status is Status.FAILED_PERMANENT
    assert [m.user_id for m in rec.sent] == [ids[1], ids[3]]
    notice = rec.send([Message("+8613800138000", text="订单已发货", user_id=ids[0])])[0]
    assert notice.ok  # transactional: the marketing suppression list does not apply


# -- 31: every opt-out keyword withdraws SMS marketing consent ------------------------------------


@pytest.mark.parametrize("word", ["R", "T", "TD", "N", "t", " n "])
def test_31_each_uplink_keyword_withdraws_consent(ws: siyu.Workspace, word: str) -> None:
    with FakeAliyunSms() as fake:
        sms = ws.channels.get(
            "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
            templates=[SmsTemplate("SMS_2", "marketing", "${name}会员，双11全场五折，拒收请回复R")], base_url=fake.url,
        )
        user = ws.users.add(phone="13800138000")
        ws.users.consent(user.id, purpose="marketing", channel="sms")
        assert sms.handle_reply("+8613800138000", word) == user.id
        assert not ws.users.has_consent(user.id, purpose="marketing", channel="sms")
        promo = Message("13800138000", template="SMS_2", variables={"name": "李"}, purpose="marketing",
                        user_id=user.id)
        assert sms.send([promo])[0].code == "consent_required" and fake.requests == []
