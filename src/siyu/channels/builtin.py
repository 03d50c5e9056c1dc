"""The built-in channels, registered through the same hook as any plugin.

Each module imports its optional dependencies (httpx, cryptography,
defusedxml) only when a channel is built, so registering them is free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def siyu_register_channels(register: Callable[[type[Any]], None]) -> None:
    from .console import ConsoleChannel
    from .email import EmailChannel
    from .miniprogram import MiniProgramChannel
    from .outbox import OutboxChannel
    from .sms.aliyun import AliyunSmsChannel
    from .sms.tencent import TencentSmsChannel
    from .webhook import WebhookChannel
    from .wecom.channel import WeComChannel

    for cls in (
        ConsoleChannel,
        OutboxChannel,
        EmailChannel,
        WebhookChannel,
        WeComChannel,
        AliyunSmsChannel,
        TencentSmsChannel,
        MiniProgramChannel,
    ):
        register(cls)
