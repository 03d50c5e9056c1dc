"""siyu (私域): the Python SDK for private-domain e-commerce operations.

>>> import siyu
>>> with siyu.connect("memory://") as ws:
...     user = ws.users.add(phone="13800138000", source="douyin_live")
...     ws.points.earn(user.id, 100, reason="sign_in", key="signin:1").amount
100
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors, events, models
from .errors import SiyuError
from .hookspecs import hookimpl, observes
from .models import Consent, Identity, MergeRecord, PointsEntry, PointsLot, TagApplication, TagGroup, User
from .workspace import Workspace, connect

try:
    __version__ = version("siyu")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Consent",
    "Identity",
    "MergeRecord",
    "PointsEntry",
    "PointsLot",
    "SiyuError",
    "TagApplication",
    "TagGroup",
    "User",
    "Workspace",
    "__version__",
    "connect",
    "errors",
    "events",
    "hookimpl",
    "models",
    "observes",
]
