"""Tag groups and the record of tag applications."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class TagGroup:
    """A group of tags. In an exclusive group a user holds at most one tag."""

    name: str
    exclusive: bool = False
    description: str = ""


@attrs.frozen(kw_only=True)
class TagApplication:
    """One line of a user's tag history: ``action`` is ``"apply"`` or ``"remove"``."""

    tag: str
    action: str
    at: datetime
    by: str
