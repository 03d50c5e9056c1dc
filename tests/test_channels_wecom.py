"""WeCom client and callbacks against the local fake server (acceptance 10-21)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import siyu
from siyu.channels import Attachment, Message, Status
from siyu.channels.wecom import ContactEvent, TokenCache, WeComClient
from siyu.errors import ChannelError, ValidationError
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeWeCom

FIXTURE = Path(__file__).parent / "fixtures" / "channels" / "wecom_change_external_contact.txt"
A_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def fixture() -> dict[str, str]:
    lines = [ln for ln in FIXTURE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id="wx49f0ab532d5d035a", secret="s3cret", clock=clock) as server:
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def wecom(ws: siyu.Workspace, fake: FakeWeCom, sleeps: Sleeps):  # type: ignore[no-untyped-def]
    return ws.channels.get(
        "wecom",
        corp_id=fake.corp_id,
        secret="s3cret",
        base_url=fake.url,
        sender="zhangsan",
        token="123456",
        encoding_aes_key=A_KEY,
        sleep=sleeps,
    )


# -- tokens -----------------------------------------------------------------------------
def test_token_is_cached_and_refreshed_after_expiry(wecom, fake: FakeWeCom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    wecom.client.get_corp_tag_list()
    wecom.client.get_corp_tag_list()
    assert fake.token_calls == 1
    clock.advance(seconds=7200 - 300 + 1)
    wecom.client.get_corp_tag_list()
    assert fake.token_calls == 2


def test_token_cache_key_includes_the_secret(fake: FakeWeCom) -> None:
    fake.secrets.add("other-app")
    tokens = TokenCache()
    one = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, tokens=tokens)
    two = WeComClient(fake.corp_id, "other-app", base_url=fake.url, tokens=tokens)
    assert one.access_token() != two.access_token()
    assert one.access_token() == one.access_token()
    assert fake.token_calls == 2


def test_workspace_channels_share_one_token(ws: siyu.Workspace, fake: FakeWeCom) -> None:
    for _ in range(2):
        ws.channels.get("wecom", corp_id=fake.corp_id, secret="s3cret", base_url=fake.url).client.get_corp_tag_list()
    assert fake.token_calls == 1


@pytest.mark.parametrize("errcode", [42001, 40014])
def test_token_error_refreshes_exactly_once(wecom, fake: FakeWeCom, errcode: int) -> None:  # type: ignore[no-untyped-def]
    wecom.client.get_corp_tag_list()
    fake.fail("get_corp_tag_list", errcode)
    wecom.client.get_corp_tag_list()
    assert fake.token_calls == 2
    fake.fail("get_corp_tag_list", errcode, times=5)
    with pytest.raises(ChannelError) as err:
        wecom.client.get_corp_tag_list()
    assert err.value.code == errcode
    assert fake.token_calls == 3  # one refresh, then raised
    assert len(fake.calls("get_corp_tag_list")) == 1 + 2 + 2


def test_expired_token_from_the_server(wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    wecom.client.get_corp_tag_list()
    fake.expire_tokens()
    wecom.client.get_corp_tag_list()
    assert fake.token_calls == 2


def test_wrong_secret_is_a_configuration_error_without_loop(ws: siyu.Workspace, fake: FakeWeCom) -> None:
    channel = ws.channels.get("wecom", corp_id=fake.corp_id, secret="bad-s3cret-value", base_url=fake.url)
    with pytest.raises(ChannelError) as err:
        channel.client.get_corp_tag_list()
    assert err.value.code == 40001 and not err.value.retryable
    assert fake.token_calls == 1
    results = channel.send([Message("ext1", text="hi")])
    assert results[0].status is Status.FAILED_PERMANENT and results[0].code == "40001"
    assert "bad-s3cret-value" not in results[0].detail


def test_rate_limit_backs_off_boundedly_then_raises(wecom, fake: FakeWeCom, sleeps: Sleeps) -> None:  # type: ignore[no-untyped-def]
    fake.fail("get_corp_tag_list", 45009, times=2)
    wecom.client.get_corp_tag_list()
    assert sleeps == [1.0, 2.0]
    sleeps.clear()
    fake.fail("get_corp_tag_list", 45033, times=10)
    with pytest.raises(ChannelError) as err:
        wecom.client.get_corp_tag_list()
    assert err.value.code == 45033 and err.value.retryable and err.value.retry_after
    assert sleeps == [1.0, 2.0, 4.0]


def test_gettoken_rate_limit_does_not_hammer(wecom, fake: FakeWeCom, sleeps: Sleeps) -> None:  # type: ignore[no-untyped-def]
    fake.fail("gettoken", 45009, times=10)
    with pytest.raises(ChannelError) as err:
        wecom.client.access_token()
    assert err.value.code == 45009
    assert fake.token_calls == 4 and len(sleeps) == 3


def test_busy_is_retried_at_most_three_times(wecom, fake: FakeWeCom, sleeps: Sleeps) -> None:  # type: ignore[no-untyped-def]
    fake.fail("get_corp_tag_list", -1, times=3)
    wecom.client.get_corp_tag_list()
    fake.fail("get_corp_tag_list", -1, times=4)
    with pytest.raises(ChannelError) as err:
        wecom.client.get_corp_tag_list()
    assert err.value.code == -1
    assert len(fake.calls("get_corp_tag_list")) == 4 + 4


# -- request shapes ---------------------------------------------------------------------
def test_add_contact_way(ws: siyu.Workspace, wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="state"):
        wecom.client.add_contact_way(state="x" * 31, user=["zhangsan"])
    assert fake.calls("add_contact_way") == []
    record = ws.wecom.add_contact_way(
        state="douyin_live_1122", user=["zhangsan"], tags=["source/douyin"], welcome="欢迎！"
    )
    assert record["config_id"].startswith("cfg") and record["qr_code"]
    body = fake.calls("add_contact_way")[0].json()
    assert body["state"] == "douyin_live_1122" and body["user"] == ["zhangsan"] and body["type"] == 1
    assert ws.wecom.contact_way("douyin_live_1122")["tags"] == ["source/douyin"]


def test_paging(wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        fake.add_contact(f"ext{i}", member="zhangsan")
    fake.add_contact("ext9", member="lisi")
    fake.follow["lisi"].append("ext0")
    fake.follow["wangwu"].append("ext0")
    got = list(wecom.client.iter_contacts(["zhangsan", "lisi"], limit=2))
    assert [c["external_contact"]["external_userid"] for c in got] == [
        "ext0",
        "ext1",
        "ext2",
        "ext3",
        "ext4",
        "ext9",
        "ext0",
    ]
    bodies = [r.json() for r in fake.calls("batch/get_by_user")]
    assert [b["cursor"] for b in bodies] == ["", "2", "4", "6"]
    assert all(b["userid_list"] == ["zhangsan", "lisi"] and b["limit"] == 2 for b in bodies)
    with pytest.raises(ValidationError):
        list(wecom.client.iter_contacts(["zhangsan"], limit=101))
    contact = wecom.client.get_external_contact("ext0")
    assert sorted(f["userid"] for f in contact["follow_user"]) == ["lisi", "wangwu", "zhangsan"]
    assert len(fake.calls("externalcontact/get")) == 2


def test_mark_tag_and_tag_sync(ws: siyu.Workspace, wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        wecom.client.mark_tag("zhangsan", "ext1")
    fake.tag_groups.append({"group_id": "g1", "group_name": "客户等级", "tag": [{"id": "t1", "name": "VIP"}]})
    ws.tags.apply(ws.users.add(wecom_external_userid="ext1").id, "interest/美妆")
    mapping = ws.wecom.push_tags()
    assert mapping["客户等级/VIP"] == "t1" and mapping["interest/美妆"].startswith("tag")
    assert "客户等级/VIP" in ws.tags.names()
    user = ws.users.find(wecom_external_userid="ext1")
    ws.wecom.mark_tags(user.id, member="zhangsan", add=["客户等级/VIP"])
    assert fake.marks[-1] == {"userid": "zhangsan", "external_userid": "ext1", "add_tag": ["t1"], "remove_tag": []}
    assert "客户等级/VIP" in ws.tags.of(user.id)


def test_mass_send_limits_shapes_and_fail_list(wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="10000"):
        wecom.client.add_msg_template([f"e{i}" for i in range(10_001)], text="x")
    with pytest.raises(ValidationError, match="9"):
        wecom.client.add_msg_template(["e1"], text="x", attachments=[{"msgtype": "image"}] * 10)
    assert fake.calls("add_msg_template") == []
    fake.add_contact("ext1")
    results = wecom.send(
        [
            Message("ext1", text="双11 文本"),
            Message("ghost", text="双11 文本"),
            Message("ext1", text="x", attachments=[Attachment("image", {"media_id": "m"})] * 10),
        ]
    )
    assert [r.status for r in results] == [Status.SENT, Status.UNAVAILABLE, Status.FAILED_PERMANENT]
    request = fake.calls("add_msg_template")[0]
    assert "文本".encode() in request.body and b"\\u6587" not in request.body
    assert request.json()["external_userid"] == ["ext1", "ghost"] and request.json()["sender"] == "zhangsan"


def test_welcome_message_and_already_sent(wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    fake.issue_welcome_code("CODE1")
    wecom.client.send_welcome_msg("CODE1", text="欢迎")
    assert fake.welcomes == [{"welcome_code": "CODE1", "text": {"content": "欢迎"}}]
    with pytest.raises(ChannelError) as err:
        wecom.client.send_welcome_msg("CODE1", text="欢迎")
    assert err.value.code == 41051 and not err.value.retryable


def test_all_traffic_goes_to_base_url(ws: siyu.Workspace) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"errcode": 0, "access_token": "T", "expires_in": 7200})
        assert request.url.params["access_token"] == "T"
        return httpx.Response(200, json={"errcode": 0, "msgid": "m1", "fail_list": []})

    channel = ws.channels.get(
        "wecom", corp_id="c", secret="s", base_url="http://wecom.internal", transport=httpx.MockTransport(handler)
    )
    assert channel.send([Message("e1", text="hi")])[0].ok
    assert set(hosts) == {"wecom.internal"}


def test_network_faults(wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    wecom.client.access_token()
    fake.inject(path="add_msg_template", status=502)  # a gateway may have passed it on
    result = wecom.send([Message("ext1", text="hi")])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "timeout_unknown"
    fake.inject(path="add_msg_template", status=429)  # refused before anything was done
    result = wecom.send([Message("ext1", text="hi")])[0]
    assert result.status is Status.RATE_LIMITED and result.code == "429"
    fake.inject(path="add_msg_template", drop=True)
    result = wecom.send([Message("ext1", text="hi")])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "timeout_unknown"
    refused = siyu.connect("memory://").channels.get("wecom", corp_id="c", secret="s", base_url="http://127.0.0.1:9")
    result = refused.send([Message("ext1", text="hi")])[0]
    assert result.status is Status.FAILED_RETRYABLE and result.code == "connect"


# -- callbacks --------------------------------------------------------------------------
def test_fixture_decrypts_to_a_typed_event(wecom) -> None:  # type: ignore[no-untyped-def]
    fx = fixture()
    text = wecom.crypto().decrypt_message(fx["msg_signature"], fx["timestamp"], fx["nonce"], fx["post_body"])
    event = ContactEvent.from_xml(text)
    assert (event.change_type, event.state, event.welcome_code, event.user_id, event.external_userid) == (
        "add_external_contact",
        "teststate",
        "WELCOMECODE",
        "zhangsan",
        "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA",
    )


def _post(handler, fx: dict[str, str]):  # type: ignore[no-untyped-def]
    return handler.handle("POST", fx["query"], fx["post_body"].encode())


def test_callback_creates_user_tags_and_welcomes_once(
    ws: siyu.Workspace, wecom, fake: FakeWeCom, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    fx = fixture()
    ws.wecom.add_contact_way(state="teststate", user=["zhangsan"], tags=["source/live"], welcome="欢迎来到小店")
    clock.set(datetime.fromtimestamp(int(fx["timestamp"]) + 3, UTC))
    fake.issue_welcome_code("WELCOMECODE", at=int(fx["timestamp"]))
    handler = ws.wecom.callbacks()
    response = _post(handler, fx)
    assert (response.status, response.body) == (200, b"success")
    assert handler.pending == 1 and ws.users.count() == 0  # acknowledged first, work deferred
    assert _post(handler, fx).status == 200  # WeCom's retry of the same delivery
    outcomes = handler.process_pending()
    assert [o for _, o in outcomes][1] == "duplicate"
    user = ws.users.find(wecom_external_userid="woAJ2GCAAAXtWyujaWJHDDGi0mAAAA")
    assert user is not None and user.source_state == "teststate" and user.source == "wecom"
    assert "source/live" in ws.tags.of(user.id)
    assert fake.welcomes == [{"welcome_code": "WELCOMECODE", "text": {"content": "欢迎来到小店"}}]
    assert ws.users.count() == 1


def test_welcome_is_skipped_after_20_seconds(ws: siyu.Workspace, wecom, fake: FakeWeCom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    fx = fixture()
    clock.set(datetime.fromtimestamp(int(fx["timestamp"]) + 25, UTC))
    handler = ws.wecom.callbacks(welcome="hi", inline=True)
    _post(handler, fx)
    assert "20 s window" in handler.log[-1][1]
    assert fake.welcomes == []


def test_del_follow_user_marks_lost(ws: siyu.Workspace, wecom) -> None:  # type: ignore[no-untyped-def]
    user = ws.users.add(wecom_external_userid="ext7")
    handler = ws.wecom.callbacks(inline=True)
    crypto = wecom.crypto()
    xml = (
        "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[del_follow_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[ext7]]></ExternalUserID></xml>"
    )
    envelope = crypto.encrypt_message(xml, "nonce1", "1700000000")
    fields = {
        k: v
        for k, v in (
            ("Encrypt", envelope.split("<![CDATA[")[1].split("]]>")[0]),
            ("MsgSignature", envelope.split("<![CDATA[")[2].split("]]>")[0]),
        )
    }
    query = f"msg_signature={fields['MsgSignature']}&timestamp=1700000000&nonce=nonce1"
    body = f"<xml><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>".encode()
    assert handler.handle("POST", query, body).status == 200
    lifecycle = getattr(ws, "lifecycle", None)
    if lifecycle is None or not hasattr(lifecycle, "mark_lost"):
        assert "lifecycle/lost" in ws.tags.of(user.id)
    assert handler.log[-1][1] == f"user {user.id} lost"


def test_callback_url_verification_and_forgeries(ws: siyu.Workspace, wecom) -> None:  # type: ignore[no-untyped-def]
    handler = ws.wecom.callbacks()
    echo = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    query = (
        "msg_signature=dd6b9c95b495b3f7e2901bfbc76c664930ffdb96&timestamp=1411443780&nonce=437374425"
        f"&echostr={quote(echo, safe='')}"
    )
    response = handler.handle("GET", query)
    assert (response.status, response.body) == (200, b"5927782489442352469")
    assert handler.handle("GET", query.replace("437374425", "437374424")).status == 403
    fx = fixture()
    assert (
        handler.handle("POST", fx["query"].replace("1372623149", "1372623148"), fx["post_body"].encode()).status == 403
    )
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    assert handler.handle("POST", fx["query"], bomb).status == 400
    assert handler.handle("POST", fx["query"], b"not xml").status == 400
    assert handler.pending == 0


def test_wsgi_app(ws: siyu.Workspace, wecom) -> None:  # type: ignore[no-untyped-def]
    import io

    fx = fixture()
    body = fx["post_body"].encode()
    seen: list[str] = []
    out = ws.wecom.callbacks().wsgi(
        {
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": fx["query"],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        },
        lambda status, headers: seen.append(status),
    )
    assert seen == ["200 OK"] and out == [b"success"]


def test_channel_config_from_environment(ws: siyu.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_WECOM_CORP_ID", "wwenv")
    monkeypatch.setenv("SIYU_WECOM_SECRET", "topsecret")
    channel = ws.channels.get("wecom")
    assert channel.config["corp_id"] == "wwenv"
    assert "topsecret" not in repr(channel) and "topsecret" not in repr(channel.client)
    monkeypatch.delenv("SIYU_WECOM_SECRET")
    with pytest.raises(ValidationError, match="SIYU_WECOM_SECRET"):
        ws.channels.get("wecom", corp_id="x")
    assert json.dumps(channel.limits.max_recipients_per_call) == "10000"


def test_concurrent_callers_share_one_token_fetch(fake: FakeWeCom) -> None:
    import threading

    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(client.access_token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and fake.token_calls == 1


def test_client_refusals_are_typed(wecom) -> None:  # type: ignore[no-untyped-def]
    from siyu.errors import InvalidMessage

    with pytest.raises(InvalidMessage) as err:
        wecom.client.add_msg_template([f"e{i}" for i in range(10_001)], text="x")
    assert isinstance(err.value, ChannelError) and not err.value.retryable


def test_duplicate_delivery_to_another_handler_instance(ws: siyu.Workspace, wecom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    fx = fixture()
    first, second = ws.wecom.callbacks(inline=True), ws.wecom.callbacks(inline=True)
    _post(first, fx)
    _post(second, fx)
    assert second.log[-1][1] == "duplicate" and ws.users.count() == 1


def test_sync_contacts_mirrors_customers_and_tags(ws: siyu.Workspace, wecom, fake: FakeWeCom) -> None:  # type: ignore[no-untyped-def]
    fake.tag_groups.append({"group_id": "g1", "group_name": "客户等级", "tag": [{"id": "t1", "name": "VIP"}]})
    fake.add_contact("ext1", state="poster", tag_ids=("t1",))
    fake.add_contact("ext2")
    fake.add_contact("ext3", tag_ids=("t-unknown",))
    existing = ws.users.add(wecom_external_userid="ext2")
    ws.wecom.pull_tags()
    assert ws.wecom.sync_contacts(["zhangsan"]) == {"seen": 3, "created": 2, "tagged": 1}
    one = ws.users.find(wecom_external_userid="ext1")
    assert one is not None and one.source_state == "poster" and "客户等级/VIP" in ws.tags.of(one.id)
    assert ws.users.find(wecom_external_userid="ext2").id == existing.id  # type: ignore[union-attr]
    assert ws.wecom.sync_contacts(["zhangsan"])["created"] == 0


def test_in_flight_calls_per_api_are_capped() -> None:
    import threading
    import time

    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"errcode": 0, "access_token": "T", "expires_in": 7200})
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={"errcode": 0, "tag_group": []})

    client = WeComClient("c", "s", base_url="http://wecom.test", transport=httpx.MockTransport(handler), concurrency=2)
    client.access_token()
    threads = [threading.Thread(target=client.get_corp_tag_list) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["max"] == 2


def test_29_the_fake_answers_45033_above_five_calls_in_flight(fake: FakeWeCom) -> None:
    import threading

    import httpx

    token = WeComClient(fake.corp_id, "s3cret", base_url=fake.url).access_token()
    gate = fake.hold("externalcontact/get_corp_tag_list")
    codes: list[int] = []

    def raw() -> None:
        reply = httpx.post(f"{fake.url}/cgi-bin/externalcontact/get_corp_tag_list?access_token={token}", json={},
                           timeout=30)
        codes.append(reply.json()["errcode"])

    threads = [threading.Thread(target=raw) for _ in range(5)]
    for thread in threads:
        thread.start()
    assert fake.wait_in_flight("externalcontact/get_corp_tag_list", 5)
    raw()  # the sixth, while five wait
    gate.set()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [0] * 5 + [45033]


def test_29_the_client_keeps_five_calls_in_flight_per_api(fake: FakeWeCom) -> None:
    import threading

    client = WeComClient(fake.corp_id, "s3cret", base_url=fake.url, sleep=lambda s: None)
    client.access_token()
    path = "externalcontact/get_corp_tag_list"
    gate = fake.hold(path)
    errors: list[Exception] = []

    def call() -> None:
        try:
            client.get_corp_tag_list()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    assert fake.wait_in_flight(path, 5)
    # Seven more callers are waiting; none of them may reach WeCom while five are in flight.
    assert not fake.wait_in_flight(path, 6, timeout=0.3)
    gate.set()
    for thread in threads:
        thread.join()
    assert errors == [] and fake.peak[path] == 5
    assert len(fake.calls("get_corp_tag_list")) == 12  # no call was answered 45033 and retried


def _contact_xml(change: str, ext: str, at: int) -> str:
    return (f"<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
            f"<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID></xml>")


def test_30_wecom_retries_slow_or_failed_answers_and_siyu_processes_each_event_once(
        ws: siyu.Workspace, wecom, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from siyu.testing.fakes import FakeWeComCallbackSender

    handler = ws.wecom.callbacks()
    answers: list[str] = []

    def endpoint(method: str, query: str, body: bytes):  # type: ignore[no-untyped-def]
        response = handler.handle(method, query, body)
        if answers and answers[0] == "slow":
            clock.advance(seconds=6)  # the answer came too late for WeCom
        if answers and answers[0] == "error":
            response = type(response)(500, b"oops")
        if answers:
            answers.pop(0)
        return response

    sender = FakeWeComCallbackSender("123456", A_KEY, "wx49f0ab532d5d035a", endpoint,
                                     clock=lambda: clock().timestamp())
    at = int(clock().timestamp())
    assert sender.send(_contact_xml("add_external_contact", "e1", at)) == [200]  # answered at once
    # Same sender (sys) and second, another customer and change: a different event.
    assert sender.send(_contact_xml("add_external_contact", "e2", at)) == [200]
    answers.extend(["slow", "error"])
    assert sender.send(_contact_xml("del_follow_user", "e1", at + 1)) == [200, 500, 200]
    outcomes = [outcome for _, outcome in handler.process_pending()]
    assert sum(o.startswith("created user") for o in outcomes) == 2
    assert sum(o == "user 1 lost" for o in outcomes) == 1 and outcomes.count("duplicate") == 2
    answers.extend(["error"] * 9)
    assert sender.send(_contact_xml("del_follow_user", "e2", at + 2)) == [500] * 4  # at most 3 retries
