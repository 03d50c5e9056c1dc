"""One configured channel instance per name per workspace, used by every path."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import ClassVar

import pytest

import siyu
from siyu.channels import Channel, DeliveryResult, Message, Option, Status
from siyu.errors import ValidationError
from siyu.testing import FakeClock, RecordingChannel


class FeishuBot(Channel):
    """A plugin channel with a required option and no environment variable set."""

    name: ClassVar[str] = "feishu"
    consent_channel: ClassVar[str] = "feishu"
    options: ClassVar[dict[str, Option]] = {"webhook_url": Option(required=True, doc="the bot's webhook")}

    def _setup(self) -> None:
        self.delivered: list[tuple[str, str]] = []

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        url = self.option("webhook_url")
        self.delivered.extend((url, self.render(m)) for m in messages)
        return [DeliveryResult(m, Status.SENT, provider_id=f"fs-{m.recipient}") for m in messages]


@siyu.hookimpl
def siyu_register_channels(register):  # type: ignore[no-untyped-def]
    register(FeishuBot)


@pytest.fixture
def ws(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> siyu.Workspace:
    monkeypatch.delenv("SIYU_FEISHU_WEBHOOK_URL", raising=False)
    plugin = types.SimpleNamespace(siyu_register_channels=siyu_register_channels)
    return siyu.connect("memory://", clock=clock, plugins=[plugin])


def test_a_channel_configured_in_code_is_the_one_campaigns_use(ws: siyu.Workspace) -> None:
    bot = ws.channels.get("feishu", webhook_url="https://open.feishu.cn/hook/abc")
    assert isinstance(bot, FeishuBot)
    assert ws.channels.get("feishu") is bot
    ids = ws.users.add_many([{"email": f"u{i}@example.cn"} for i in range(3)])
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="feishu")
    campaign = ws.campaigns.create("新品", channel="feishu", template="新品上架", audience=ids)
    assert ws.campaigns.preview(campaign.id).samples  # the preview renders through it too
    ws.campaigns.send(campaign.id)
    assert [text for _, text in bot.delivered] == ["新品上架"] * 3
    assert {url for url, _ in bot.delivered} == {"https://open.feishu.cn/hook/abc"}


def test_configuring_again_replaces_the_instance_everywhere(ws: siyu.Workspace) -> None:
    first = ws.channels.get("feishu", webhook_url="https://old")
    second = ws.channels.get("feishu", webhook_url="https://new")
    assert second is not first and ws.channels.get("feishu") is second
    uid = ws.users.add(email="a@example.cn").id
    ws.users.consent(uid, purpose="marketing", channel="feishu")
    ws.campaigns.send(ws.campaigns.create("c", channel="feishu", template="hi", audience=[uid]).id)
    assert isinstance(second, FeishuBot) and isinstance(first, FeishuBot)
    assert [url for url, _ in second.delivered] == ["https://new"] and first.delivered == []


def test_an_unconfigured_channel_still_names_the_missing_option(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match="SIYU_FEISHU_WEBHOOK_URL"):
        ws.campaigns.create("c", channel="feishu", template="hi", audience=[ws.users.add(email="a@b.cn").id])


def test_a_labelled_outbox_does_not_replace_the_workspace_outbox(ws: siyu.Workspace) -> None:
    outbox = ws.channels.outbox()
    dry = ws.channels.outbox(label="sms_aliyun")
    assert dry is not outbox and ws.channels.outbox() is outbox


def test_an_installed_instance_wins_until_configured_again(ws: siyu.Workspace) -> None:
    rec = ws.channels.install(RecordingChannel(name="feishu"))
    assert ws.channels.get("feishu") is rec
    bot = ws.channels.get("feishu", webhook_url="https://x")
    assert isinstance(bot, FeishuBot) and ws.channels.get("feishu") is bot
