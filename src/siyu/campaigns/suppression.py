"""The campaign suppression list, per medium (``"sms"``, ``"wecom"`` ...) or ``"*"``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..services._common import check_text, check_user_id, require_user

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from .policy import ContactPolicy

__all__ = ["Suppressions"]


class Suppressions:
    """Puts users on and takes them off the suppression list the ``suppressed`` gate reads."""

    def __init__(self, uow: UnitOfWork, *, policy: ContactPolicy) -> None:
        self._uow = uow
        self._policy = policy

    def suppress(self, user_id: int, *, channel: str = "*", reason: str = "opt_out") -> None:
        uid = check_user_id(user_id)
        medium = self._medium(check_text(channel, "channel", max_length=64))
        check_text(reason, "reason", max_length=128)
        with self._uow.write() as tx:
            require_user(tx, uid)
            tx.campaigns.suppress(uid, medium, reason, self._uow.now())

    def unsuppress(self, user_id: int, *, channel: str = "*") -> bool:
        uid = check_user_id(user_id)
        name = check_text(channel, "channel", max_length=64)
        medium = self._medium(name)
        with self._uow.write() as tx:
            removed = tx.campaigns.unsuppress(uid, medium)
            # An entry an older siyu filed under the channel's own name goes too.
            return (tx.campaigns.unsuppress(uid, name) if name != medium else False) or removed

    def _medium(self, channel: str) -> str:
        # Gates match the list on the medium; an entry under a channel's own name
        # ("sms_aliyun") would never match and the user would still be messaged.
        return self._policy.medium(channel)
