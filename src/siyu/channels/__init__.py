"""Channels: how siyu reaches people (console, outbox, e-mail, webhook, WeCom,
SMS, mini-program subscribe messages), and the contract a plugin channel
implements. See :mod:`siyu.channels.base` for the rules."""

from .base import (
    Attachment,
    Channel,
    DeliveryResult,
    Limits,
    Message,
    Option,
    Purpose,
    Status,
    render_template,
    text_length,
)
from .receipts import Receipt, ReceiptStatus

__all__ = [
    "Attachment",
    "Channel",
    "DeliveryResult",
    "Limits",
    "Message",
    "Option",
    "Purpose",
    "Receipt",
    "ReceiptStatus",
    "Status",
    "render_template",
    "text_length",
]
