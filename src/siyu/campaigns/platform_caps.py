"""Platform caps, as versioned data.

Platforms change these numbers (WeCom's per-customer mass-message cap went
from 4 per month to "days in the month", and admins can lower it to 7 per
week or 1 per day), so they live here as data with their source and date, not
in code. Override any of them per workspace with
``ws.campaigns.configure(platform_caps={...})`` (same shape as :data:`CAPS`).

Each cap counts campaign deliveries *on that medium* (the channel's
``consent_channel``: both SMS providers share ``"sms"``) per user over a
``period``: ``"day"`` (calendar day in the business time zone), ``"week"``
(the last 7 calendar days), ``"month"`` (calendar month), ``"rolling_24h"``.
``limit`` is a number or ``"days_in_month"``. A cap of kind ``"credits"``
instead requires a stored one-time subscription credit (mini-programs).
Each default names its ``source`` (the platform page and its date), so a changed
rule can be checked and overridden with ``ws.campaigns.configure(platform_caps=...)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CAPS", "VERSION"]

#: When these values were last checked against the platforms' documentation.
VERSION = "2025-11-17"

CAPS: dict[str, list[dict[str, Any]]] = {
    "wecom": [
        {
            "key": "wecom.mass_msg.customer_cap",
            "period": "month",
            "limit": "days_in_month",
            "source": "developer.work.weixin.qq.com/document/path/92135 (2025-11-17); admin-configurable "
            "to 7/week or 1/day; older value 4/month",
        },
    ],
    "sms": [
        {
            "key": "sms.aliyun.notify_promo.daily",
            "period": "rolling_24h",
            "limit": 50,
            "source": "Alibaba Cloud SMS flow control: 50 notification/promotion SMS per number per "
            "signature+template per rolling 24 h",
        },
    ],
    "miniprogram": [
        {
            "key": "miniprogram.subscribe.one_time_credit",
            "kind": "credits",
            "source": "developers.weixin.qq.com subscribe-message overview: one acceptance allows one message",
        },
    ],
    "mp_service": [
        {
            "key": "mp.service.mass_msg.per_user_month",
            "period": "month",
            "limit": 4,
            "source": "developers.weixin.qq.com service-account Batch_Sends guide",
        },
    ],
}
