"""WeCom (企业微信): API client, callback crypto and handler, and the ``wecom`` channel."""

from .callbacks import CallbackResponse, ContactEvent, WeComCallbacks
from .channel import WeComChannel
from .client import TokenCache, WeComClient
from .crypto import WXBizMsgCrypt

__all__ = [
    "CallbackResponse",
    "ContactEvent",
    "TokenCache",
    "WXBizMsgCrypt",
    "WeComCallbacks",
    "WeComChannel",
    "WeComClient",
]
