"""The module the ``siyu`` entry point names: it registers the channel class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import siyu


@siyu.hookimpl
def siyu_register_channels(register: Callable[[type[Any]], None]) -> None:
    from .channel import DingTalkChannel

    register(DingTalkChannel)
