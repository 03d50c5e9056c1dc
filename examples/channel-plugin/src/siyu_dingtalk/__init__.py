"""siyu-dingtalk: a DingTalk group-robot channel for siyu (an example plugin)."""

from .channel import DingTalkChannel

__all__ = ["DingTalkChannel"]
