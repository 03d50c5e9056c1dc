"""The channel contract, ws.channels, console, outbox, RecordingChannel, webhook, mini-program, e-mail."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.channels import Attachment, Channel, DeliveryResult, Limits, Message, Status, render_template, text_length
from siyu.channels.webhook import signed_headers, verify
from siyu.errors import CallbackRejected, PluginError, UnknownChannelError, ValidationError
from siyu.testing import FakeClock, RecordingChannel
from siyu.testing.fakes import FakeMiniProgram, FakeSmtp, WebhookReceiver, self_signed_context


# -- contract ---------------------------------------------------------------------------
def test_builtin_channels_are_registered(ws: siyu.Workspace) -> None:
    assert set(ws.channels.names()) >= {
        "console",
        "outbox",
        "email",
        "webhook",
        "wecom",
        "sms_aliyun",
        "sms_tencent",
        "miniprogram",
    }
    with pytest.raises(UnknownChannelError, match="Did you mean 'wecom'"):
        ws.channels.get("wecon")


def test_unknown_option_and_missing_required(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match="has no option"):
        ws.channels.get("console", colour=True)
    with pytest.raises(ValidationError, match="SIYU_EMAIL_HOST"):
        ws.channels.get("email", from_addr="a@b.cn")


def test_length_counting() -> None:
    assert text_length("双11🎉", "chars") == 4
    assert text_length("双11🎉", "utf8_bytes") == 3 + 2 + 4
    assert render_template("你好 ${name}，订单 {1}", {"name": "李", "1": "A"}) == "你好 李，订单 A"
    with pytest.raises(ValidationError, match="name"):
        render_template("${name}", {})


def test_check_render_before_send(ws: siyu.Workspace) -> None:
    rec = RecordingChannel(limits=Limits(max_recipients_per_call=2, max_text_length=5, max_attachments=1))
    assert rec.check(Message("a", text="123456")) == ["text is 6 characters; channel 'recording' allows 5"]
    assert rec.check(Message("a", text="hi", attachments=[Attachment("image")] * 2))
    assert rec.check(Message("", text="hi")) == ["recipient is empty"]
    assert rec.check(Message("a", text="hi", purpose="spam"))
    assert rec.check(Message("a", template="${x}")) == ["template variable 'x' has no value; pass variables={'x': ...}"]
    results = rec.send([Message(str(i), text="ok") for i in range(5)] + [Message("z", text="too long")])
    assert [len(c) for c in rec.calls] == [2, 2, 1]
    assert results[-1].status is Status.FAILED_PERMANENT and results[-1].code == "invalid"


def test_recording_channel_scripting_and_install(ws: siyu.Workspace) -> None:
    rec = ws.channels.install(RecordingChannel(name="sms_aliyun", consent_channel="sms"))
    assert ws.channels.get("sms_aliyun") is rec
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=30.0)
    results = rec.send([Message("a", text="1"), Message("b", text="2")])
    assert results[0].status is Status.RATE_LIMITED and results[0].retryable and results[0].retry_after == 30.0
    assert results[1].ok and [m.recipient for m in rec.sent] == ["b"]
    user = ws.users.add(phone="13800138000")
    blocked = rec.send([Message("x", text="promo", user_id=user.id, purpose="marketing")])[0]
    assert blocked.code == "consent_required" and len(rec.sent) == 1


def test_plugin_channel_registration(clock: FakeClock) -> None:
    class Pigeon(Channel):
        name = "pigeon"

        def _deliver(self, messages):  # type: ignore[no-untyped-def]
            return [DeliveryResult(m, Status.SENT) for m in messages]

    class Plugin:
        @siyu.hookimpl
        def siyu_register_channels(self, register):  # type: ignore[no-untyped-def]
            register(Pigeon)

    with siyu.connect("memory://", plugins=[Plugin()], clock=clock) as ws:
        assert ws.channels.get("pigeon").send(Message("a", text="coo"))[0].ok

    class Clash:
        @siyu.hookimpl
        def siyu_register_channels(self, register):  # type: ignore[no-untyped-def]
            class Fake(Pigeon):
                name = "outbox"

            register(Fake)

    with pytest.raises(PluginError, match="registered twice"):
        siyu.connect("memory://", plugins=[Clash()])


def test_console(ws: siyu.Workspace) -> None:
    out = io.StringIO()
    ws.channels.get("console", stream=out).send(Message("13800138000", template="你好 ${n}", variables={"n": "李"}))
    assert out.getvalue() == "→ 13800138000: 你好 李\n"


# -- outbox -----------------------------------------------------------------------------
def test_outbox_stores_once_per_key(ws: siyu.Workspace) -> None:
    outbox = ws.channels.get("outbox")
    first = outbox.send(
        [
            Message("a", text="hi", key="k1"),
            Message("b", text="yo", key="k2"),
            Message("a", text="hi", key="k1"),
            Message("c", text="no key"),
        ]
    )
    again = outbox.send([Message("a", text="hi", key="k1")])
    assert [r.ok for r in first + again] == [True] * 5
    assert first[2].provider_id == first[0].provider_id == again[0].provider_id
    assert "stored once" in again[0].detail
    assert outbox.count() == 3
    rows = outbox.messages()
    assert [(r.recipient, r.text, r.key) for r in rows] == [("a", "hi", "k1"), ("b", "yo", "k2"), ("c", "no key", None)]
    dry = ws.channels.get("outbox", label="sms_aliyun")
    dry.send([Message("a", text="hi", key="k1")])
    assert dry.count() == 1 and outbox.count() == 3
    assert outbox.clear() == 3 and outbox.count() == 0


def test_outbox_bulk_and_persistence(tmp_path, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(url, clock=clock) as ws:
        results = ws.channels.get("outbox").send(
            [Message(f"u{i}", text=f"第{i}条", key=f"c1:{i}") for i in range(12_000)]
        )
        assert all(r.ok for r in results)
    with siyu.connect(url, clock=clock) as ws:
        outbox = ws.channels.get("outbox")
        assert outbox.count() == 12_000
        assert sum(1 for _ in outbox.iter_messages(batch=5000)) == 12_000
        outbox.send([Message("u3", text="第3条", key="c1:3")])
        assert outbox.count() == 12_000


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))),
        max_size=20,
    )
)
def test_outbox_keys_property(rows: list[tuple[str, str | None]]) -> None:
    with siyu.connect("memory://") as ws:
        outbox = ws.channels.get("outbox")
        results = outbox.send([Message(r, text="x", key=k) for r, k in rows])
        expected = len({k for _, k in rows if k}) + sum(1 for _, k in rows if k is None)
        assert outbox.count() == expected
        by_key: dict[str, str | None] = {}
        for (_, key), result in zip(rows, results, strict=True):
            if key is not None:
                assert by_key.setdefault(key, result.provider_id) == result.provider_id


# -- webhook ----------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="whsec") as server:
        yield server


def test_webhook_end_to_end(ws: siyu.Workspace, receiver: WebhookReceiver) -> None:
    hook = ws.channels.get("webhook", url=receiver.url + "/hook", secret="whsec")
    results = hook.send(
        [Message("u1", text="订单已发货", key="order-1"), Message("u2", template="hi ${n}", variables={"n": "李"})]
    )
    assert all(r.ok for r in results)
    assert receiver.received["order-1"]["text"] == "订单已发货"
    assert {p["text"] for p in receiver.received.values()} == {"订单已发货", "hi 李"}
    hook.send([Message("u1", text="订单已发货", key="order-1")])
    assert len(receiver.received) == 2  # the receiver de-duplicates a resend
    assert "whsec" not in repr(hook)


def test_webhook_faults(ws: siyu.Workspace, receiver: WebhookReceiver) -> None:
    hook = ws.channels.get("webhook", url=receiver.url, secret="whsec", timeout=0.3)
    receiver.inject(status=429, headers={"Retry-After": "7"})
    receiver.inject(status=503)
    receiver.inject(status=410)
    receiver.inject(delay=0.8)
    results = [hook.send(Message("u", text="x"))[0] for _ in range(4)]
    assert [r.status for r in results] == [
        Status.RATE_LIMITED,
        Status.FAILED_RETRYABLE,
        Status.UNAVAILABLE,
        Status.FAILED_RETRYABLE,
    ]
    assert results[0].retry_after == 7.0
    wrong = ws.channels.get("webhook", url=receiver.url, secret="other")
    assert wrong.send(Message("u", text="x"))[0].status is Status.REJECTED
    assert receiver.rejected == 1
    nowhere = ws.channels.get("webhook", url="http://127.0.0.1:9/", secret="s")
    assert nowhere.send(Message("u", text="x"))[0].code == "connect"
    assert ws.channels.get("webhook", secret="s").send(Message("u", text="x"))[0].code == "invalid"


def test_verify_helper() -> None:
    body = b'{"id": "1"}'
    headers = signed_headers("k", body, key="1", timestamp=1000)
    assert verify("k", body, headers, now=1100) == {"id": "1"}
    with pytest.raises(CallbackRejected, match="stale"):
        verify("k", body, headers, now=1000 + 301)
    with pytest.raises(CallbackRejected, match="signature"):
        verify("k", body + b" ", headers, now=1000)
    with pytest.raises(CallbackRejected):
        verify("k", body, {}, now=1000)


# -- mini-program -----------------------------------------------------------------------
@pytest.fixture
def mp_fake() -> Iterator[FakeMiniProgram]:
    with FakeMiniProgram(templates={"TPL1": ["thing1", "time2"]}) as fake:
        yield fake


@pytest.fixture
def mp(ws: siyu.Workspace, mp_fake: FakeMiniProgram):  # type: ignore[no-untyped-def]
    return ws.channels.get("miniprogram", appid="wxapp", secret="appsecret", base_url=mp_fake.url)


def _sub(openid: str = "o1", **data: str) -> Message:
    return Message(
        openid,
        template="TPL1",
        variables=data or {"thing1": "订单已发货", "time2": "2026-11-23 10:00"},
        options={"page": "pages/order?id=1"},
    )


def test_miniprogram_send_and_credits(mp, mp_fake: FakeMiniProgram) -> None:  # type: ignore[no-untyped-def]
    assert mp.send(_sub())[0].code == "no_credit" and mp_fake.requests == []
    mp.add_credit("o1", "TPL1", 2)
    assert mp.send(_sub())[0].ok
    body = mp_fake.sent[0]
    assert body == {
        "touser": "o1",
        "template_id": "TPL1",
        "page": "pages/order?id=1",
        "data": {"thing1": {"value": "订单已发货"}, "time2": {"value": "2026-11-23 10:00"}},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    assert mp.credits("o1", "TPL1") == 1
    stable = mp_fake.calls("stable_token")[0].json()
    assert stable["force_refresh"] is False


def test_miniprogram_field_validation(mp, mp_fake: FakeMiniProgram) -> None:  # type: ignore[no-untyped-def]
    mp.add_credit("o1", "TPL1", 5)
    for data in ({"thing1": "一" * 21}, {"phrase2": "abc"}, {"phrase2": "六个汉字六个"}, {"number3": "12a"}):
        result = mp.send(_sub(**data))[0]
        assert result.code == "invalid", data
    assert mp_fake.requests == [] and mp.credits("o1", "TPL1") == 5


def test_miniprogram_errors(mp, mp_fake: FakeMiniProgram) -> None:  # type: ignore[no-untyped-def]
    mp.add_credit("o1", "TPL1", 3)
    mp_fake.errcodes["o1"] = 43101
    result = mp.send(_sub())[0]
    assert result.status is Status.UNAVAILABLE and mp.credits("o1", "TPL1") == 0
    assert mp.send(_sub())[0].code == "no_credit"
    mp.add_credit("o2", "TPL1", 1)
    mp_fake.errcodes["o2"] = 47003
    result = mp.send(_sub("o2"))[0]
    assert result.status is Status.REJECTED and "thing1" in result.detail
    assert mp.credits("o2", "TPL1") == 1  # not delivered: the credit is kept
    del mp_fake.errcodes["o2"]
    mp_fake.expire_tokens()
    assert mp.send(_sub("o2"))[0].ok
    assert len(mp_fake.calls("stable_token")) == 2


# -- e-mail -----------------------------------------------------------------------------
def _mail(to: str = "li@example.cn") -> Message:
    return Message(
        to,
        subject="发货通知",
        text="您的订单已发货",
        attachments=[Attachment("file", {"filename": "单据.txt", "content": b"hello", "mime": "text/plain"})],
    )


def test_email_plain_and_refused_recipient(ws: siyu.Workspace) -> None:
    with FakeSmtp(domains=["example.cn"]) as smtp:
        smtp.refuse["nobody@example.cn"] = (550, "no such user")
        smtp.refuse["later@example.cn"] = (451, "try later")
        mail = ws.channels.get(
            "email", host="127.0.0.1", port=smtp.port, security="none", from_addr="shop@example.cn", from_name="小店"
        )
        results = mail.send([_mail(), _mail("nobody@example.cn"), _mail("later@example.cn"), Message("x", text="y")])
        assert [r.status for r in results] == [
            Status.SENT,
            Status.UNAVAILABLE,
            Status.FAILED_RETRYABLE,
            Status.FAILED_PERMANENT,
        ]
        ((to, message),) = smtp.messages
        assert to == ["li@example.cn"] and message["Subject"] == "发货通知"
        parts = list(message.walk())
        assert parts[1].get_content_charset() == "utf-8"
        assert any(p.get_filename() == "单据.txt" for p in parts)


def test_email_starttls_and_auth(ws: siyu.Workspace) -> None:
    server_ctx, client_ctx = self_signed_context()
    with FakeSmtp(tls_context=server_ctx, users={"shop": "pw"}) as smtp:
        ok = ws.channels.get(
            "email",
            host="127.0.0.1",
            port=smtp.port,
            security="starttls",
            username="shop",
            password="pw",
            from_addr="shop@example.cn",
            ssl_context=client_ctx,
        )
        assert ok.send(_mail())[0].ok
        bad = ws.channels.get(
            "email",
            host="127.0.0.1",
            port=smtp.port,
            security="starttls",
            username="shop",
            password="wrong-pw",
            from_addr="shop@example.cn",
            ssl_context=client_ctx,
        )
        result = bad.send(_mail())[0]
        assert result.status is Status.FAILED_PERMANENT and result.code == "auth" and "wrong-pw" not in result.detail
        untrusted = ws.channels.get(
            "email", host="127.0.0.1", port=smtp.port, security="starttls", from_addr="shop@example.cn"
        )
        assert untrusted.send(_mail())[0].code == "tls"
        assert len(smtp.messages) == 1


def test_email_connection_refused(ws: siyu.Workspace) -> None:
    mail = ws.channels.get("email", host="127.0.0.1", port=9, security="none", from_addr="shop@example.cn")
    result = mail.send(_mail())[0]
    assert result.status is Status.FAILED_RETRYABLE and result.code == "connect"


def test_email_env_config(ws: siyu.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_EMAIL_HOST", "smtp.example.cn")
    monkeypatch.setenv("SIYU_EMAIL_PORT", "2525")
    monkeypatch.setenv("SIYU_EMAIL_FROM_ADDR", "a@example.cn")
    monkeypatch.setenv("SIYU_EMAIL_PASSWORD", "hunter2")
    channel = ws.channels.get("email")
    assert channel.config["port"] == 2525 and "hunter2" not in repr(channel)
    assert datetime(2026, 1, 1, tzinfo=UTC)


def test_marketing_results_carry_the_consent_they_relied_on(ws: siyu.Workspace) -> None:
    rec = ws.channels.install(RecordingChannel(name="wecom", consent_channel="wecom"))
    user = ws.users.add(phone="13800138000")
    ws.users.consent(user.id, purpose="marketing", channel="*", source="signup-form", notice_version="v3")
    promo, notice = rec.send(
        [
            Message("a", text="promo", user_id=user.id, purpose="marketing"),
            Message("a", text="order shipped", user_id=user.id),
        ]
    )
    assert promo.ok and promo.consent is not None and promo.consent.source == "signup-form"
    assert notice.ok and notice.consent is None
    ghost = rec.send([Message("a", text="promo", user_id=999, purpose="marketing")])[0]
    assert ghost.code == "unknown_user"


def test_email_implicit_tls(ws: siyu.Workspace) -> None:
    server_ctx, client_ctx = self_signed_context()
    with FakeSmtp(tls_context=server_ctx, implicit_tls=True, domains=["example.cn"]) as smtp:
        mail = ws.channels.get(
            "email",
            host="127.0.0.1",
            port=smtp.port,
            security="ssl",
            from_addr="shop@example.cn",
            ssl_context=client_ctx,
        )
        result = mail.send(Message("li@example.cn", subject="s", text="t", key="weird key <@>"))[0]
        assert result.ok and "weird" not in str(result.provider_id)
        assert len(smtp.messages) == 1


def test_miniprogram_subscription_events_feed_credits(mp) -> None:  # type: ignore[no-untyped-def]
    popup = (
        "<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[o9]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>"
        "<List><TemplateId><![CDATA[TPL1]]></TemplateId><SubscribeStatusString><![CDATA[accept]]>"
        "</SubscribeStatusString><PopupScene>0</PopupScene></List>"
        "<List><TemplateId><![CDATA[TPL2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]>"
        "</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>"
    )
    assert mp.handle_event(popup) == {"TPL1": 1, "TPL2": 0}
    assert mp.handle_event(popup.encode())["TPL1"] == 2
    change = (
        '{"FromUserName": "o9", "Event": "subscribe_msg_change_event", '
        '"List": {"TemplateId": "TPL1", "SubscribeStatusString": "reject"}}'
    )
    assert mp.handle_event(change) == {"TPL1": 0}
    assert mp.credits("o9", "TPL1") == 0
    with pytest.raises(ValidationError):
        mp.handle_event('<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>')
