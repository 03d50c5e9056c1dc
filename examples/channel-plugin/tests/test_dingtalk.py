"""The plugin's own tests: offline, with httpx.MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest
from siyu_dingtalk.channel import DingTalkChannel, sign

import siyu
from siyu.channels import Message, Status


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DISABLE_PLUGIN_AUTOLOAD", "1")


def robot(handler, **config):  # type: ignore[no-untyped-def]
    ws = siyu.connect("memory://", plugins=["siyu_dingtalk.plugin"])
    return ws.channels.get(
        "dingtalk",
        access_token="tok-9f8e",
        secret="SECabc",
        transport=httpx.MockTransport(handler),
        clock=lambda: 1_700_000_000.0,
        **config,
    )


def test_registered_through_the_hook() -> None:
    ws = siyu.connect("memory://", plugins=["siyu_dingtalk.plugin"])
    assert "dingtalk" in ws.channels.names()
    assert isinstance(ws.channels.get("dingtalk", access_token="t", secret="s"), DingTalkChannel)


def test_sends_signed_text() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    result = robot(handler).send(Message("ops", text="今日新增会员 ${n} 人".replace("${n}", "128")))[0]
    assert result.ok
    request = seen[0]
    assert request.url.params["timestamp"] == "1700000000000"
    assert request.url.params["sign"] == sign("SECabc", 1_700_000_000_000)
    assert json.loads(request.content) == {"msgtype": "text", "text": {"content": "今日新增会员 128 人"}}


def test_outcomes() -> None:
    answers = iter(
        [
            httpx.Response(200, json={"errcode": 130101, "errmsg": "send too fast"}),
            httpx.Response(200, json={"errcode": 310000, "errmsg": "sign not match"}),
            httpx.Response(502),
        ]
    )
    channel = robot(lambda request: next(answers))
    results = channel.send([Message("ops", text=str(i)) for i in range(3)])
    assert [r.status for r in results] == [Status.RATE_LIMITED, Status.FAILED_PERMANENT, Status.FAILED_PERMANENT]
    assert results[2].code == "timeout_unknown"  # a 502 may have been posted: never sent again blindly

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    assert robot(refuse).send(Message("ops", text="x"))[0].code == "connect"


def test_validation_and_secrets() -> None:
    channel = robot(lambda request: httpx.Response(200, json={"errcode": 0}))
    assert channel.send(Message("ops", text="长" * 7000))[0].code == "invalid"  # 21,000 bytes
    assert "SECabc" not in repr(channel) and "tok-9f8e" not in repr(channel)
