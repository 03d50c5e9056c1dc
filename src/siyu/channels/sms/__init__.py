"""SMS channels: Alibaba Cloud and Tencent Cloud, with their request signers."""

from .base import OPT_OUT_KEYWORDS, SmsChannel, SmsTemplate

__all__ = ["OPT_OUT_KEYWORDS", "SmsChannel", "SmsTemplate"]
