"""Phones: masks that keep what the user typed, landlines flagged and refused by SMS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.channels import Message, Status
from siyu.channels.sms import SmsTemplate
from siyu.cli import cli
from siyu.errors import InvalidPhone
from siyu.identities import line_type, mask_phone
from siyu.testing.fakes import FakeAliyunSms

BEIJING_LANDLINE = "010-1234-5678"


# -- masks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("+8613800138000", "138****8000"),  # a stored number, the way people write it
        ("+861012345678", "010****5678"),
        ("13800138000", "138****8000"),
        ("1380013800", "138***3800"),  # one digit short: the mask is one shorter too
        ("138001380001", "138*****0001"),  # one digit too many
        ("+86 138-0013-8000", "+86 138-****-8000"),
        ("0086 13800138000", "0086 138****8000"),
        ("+14155552671", "+141****2671"),
        ("1234567", "*****67"),
        ("123", "***"),
    ],
)
def test_masks_keep_every_character_the_user_typed(typed: str, shown: str) -> None:
    assert mask_phone(typed) == shown


@given(st.text(alphabet="0123456789 +-()", max_size=30))
def test_a_mask_is_as_long_as_the_input_and_hides_most_digits(typed: str) -> None:
    masked = mask_phone(typed)
    if typed.startswith("+86") and typed[1:].isdigit():
        return  # a stored number shows without its country code
    assert len(masked) == len(typed)
    assert [c for c in masked if not c.isdigit() and c != "*"] == [c for c in typed if not c.isdigit()]
    digits = sum(c.isdigit() for c in typed)
    assert sum(c.isdigit() for c in masked) <= min(7, digits if digits >= 8 else 2)


def test_errors_about_a_mistyped_phone_show_its_real_length(ws: siyu.Workspace) -> None:
    with pytest.raises(InvalidPhone) as info:
        ws.users.add(phone="138001380001")
    assert "'138*****0001'" in str(info.value) and "138001380001" not in str(info.value)
    with pytest.raises(InvalidPhone, match=r"'138\*\*\*3800'"):
        ws.users.find(phone="1380013800")


# -- landlines ----------------------------------------------------------------------------


def test_a_landline_is_flagged_on_its_identity(ws: siyu.Workspace) -> None:
    landline = ws.users.add(phone=BEIJING_LANDLINE)
    mobile = ws.users.add(phone="13800138000", email="a@example.cn")
    (ident,) = landline.identities
    assert ident.value == "+861012345678"
    assert ident.line_type == "landline" and ident.sms_reachable is False
    phone, email = sorted(mobile.identities, key=lambda i: i.kind, reverse=True)
    assert phone.line_type == "mobile" and phone.sms_reachable is True
    assert email.line_type is None and email.sms_reachable is None
    assert line_type("+864008123123") == "shared_cost"


@pytest.fixture
def aliyun_fake() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as fake:
        yield fake


def test_sms_refuses_a_landline_clearly_and_sends_the_rest(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    sms = ws.channels.get(
        "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
        templates=[SmsTemplate("SMS_1", "notification", "您的订单${order}已发货")], base_url=aliyun_fake.url,
    )
    results = sms.send([
        Message(BEIJING_LANDLINE, template="SMS_1", variables={"order": "A1"}),
        Message("4008123123", template="SMS_1", variables={"order": "A2"}),
        Message("13800138000", template="SMS_1", variables={"order": "A3"}),
    ])
    assert [r.status for r in results] == [Status.FAILED_PERMANENT, Status.FAILED_PERMANENT, Status.SENT]
    assert "landline: SMS cannot reach it" in results[0].detail and "5678" in results[0].detail
    assert "SMS cannot reach it" in results[1].detail
    assert [s["PhoneNumbers"] for s in aliyun_fake.sent] == ["13800138000"]


def test_an_sms_campaign_reports_the_landline_instead_of_sending(
    ws: siyu.Workspace, aliyun_fake: FakeAliyunSms
) -> None:
    ws.channels.get(
        "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
        templates=[SmsTemplate("SMS_9", "notification", "您的订单已发货")], base_url=aliyun_fake.url,
    )
    ids = [ws.users.add(phone=BEIJING_LANDLINE).id, ws.users.add(phone="13800138000").id]
    campaign = ws.campaigns.create(
        "发货", channel="sms_aliyun", template="SMS_9", audience=ids, purpose="transactional",
        attribution_window=timedelta(days=1),
    )
    ws.campaigns.send(campaign.id)
    by_user = {d.user_id: d for d in ws.campaigns.deliveries(campaign.id)}
    assert by_user[ids[1]].status == "sent"
    assert by_user[ids[0]].status != "sent" and "landline" in (by_user[ids[0]].detail or "")
    assert [s["PhoneNumbers"] for s in aliyun_fake.sent] == ["13800138000"]


def test_users_show_says_sms_cannot_reach_a_landline(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db) as ws:
        uid = ws.users.add(phone=BEIJING_LANDLINE).id
    result = CliRunner().invoke(cli, ["--db", db, "users", "show", str(uid)])
    assert result.exit_code == 0, result.output
    assert "010****5678" in result.output and "landline: SMS cannot reach it" in result.output
