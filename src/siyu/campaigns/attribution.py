"""Goal attribution: a conversion is credited to the user's last campaign touch
within that campaign's attribution window."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._clock import aware
from ..events import ConversionAttributed
from ..services._common import MAX_ID, check_int, check_text, check_user_id, require_user
from .models import Delivery

if TYPE_CHECKING:
    from .._uow import UnitOfWork

__all__ = ["Conversions"]


class Conversions:
    """Attributes goals to campaign touches (``ws.campaigns.convert``)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def convert(
        self, user_id: int, goal: str, *, at: datetime | None = None, ref: str | None = None, value_fen: int = 0
    ) -> Delivery | None:
        uid = check_user_id(user_id)
        check_text(goal, "goal", max_length=64)
        if ref is not None:
            check_text(ref, "ref", max_length=200)
        value = check_int(value_fen, "value_fen", minimum=0, maximum=MAX_ID)
        when = self._uow.now() if at is None else aware(at, "at")
        with self._uow.write() as tx:
            require_user(tx, uid)
            touch = tx.campaigns.last_touch(uid, when, goal)
            if touch is None:
                return None
            if tx.campaigns.add_conversion(touch, goal, ref, value, when):
                tx.emit(ConversionAttributed(at=when, campaign_id=touch.campaign_id, delivery_id=touch.id,
                                             user_id=uid, variant=touch.variant, goal=goal, ref=ref))
        return Delivery.of(touch)
