"""WeCom's staff and transfer APIs (客户联系: 跟进成员, 在职继承, 离职继承), checked before any call.

:class:`StaffApi` wraps a :class:`~siyu.channels.wecom.WeComClient` (tokens,
backoff and the per-API concurrency cap come from it) and refuses what WeCom
would refuse before making the request: more than 100 customers per transfer,
a success message over 200 characters, handing a customer over to the same
member, a ``page_size`` over 1000. Pages are followed to the end. Limits are as
documented by WeCom (2023-12 .. 2025-11).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import InvalidMessage

if TYPE_CHECKING:
    from ..channels.wecom.client import WeComClient

__all__ = ["LIMITS", "StaffApi", "TransferLimits"]


@attrs.frozen
class TransferLimits:
    """WeCom's transfer limits as data (documented 2023-12-01)."""

    per_call: int = 100
    message_chars: int = 200
    per_customer: int = 2
    window_days: int = 90
    takeover_hours: int = 24
    unassigned_page: int = 1000
    batch_members: int = 100
    batch_limit: int = 100


LIMITS = TransferLimits()


class StaffApi:
    """The staff side of WeCom customer contact, for one app's client."""

    def __init__(self, client: WeComClient, *, limits: TransferLimits = LIMITS) -> None:
        self.client = client
        self.limits = limits

    # -- members and relations ---------------------------------------------------------------
    def follow_users(self) -> list[str]:
        """Members with customer contact enabled (``get_follow_user_list``, a GET with only the token)."""
        data = self.client.call("GET", "externalcontact/get_follow_user_list")
        return [str(u) for u in data.get("follow_user") or []]

    def member(self, userid: str) -> dict[str, Any]:
        """One member's details (``user/get``: ``name``, ``department`` ...)."""
        return self.client.call("GET", "user/get", params={"userid": userid})

    def contact(self, external_userid: str) -> dict[str, Any]:
        """One customer with every follower: ``externalcontact/get`` returns 500
        followers per page and a ``next_cursor`` beyond that; the pages are joined."""
        cursor = ""
        contact: dict[str, Any] = {}
        follow: list[dict[str, Any]] = []
        while True:
            params = {"external_userid": external_userid, **({"cursor": cursor} if cursor else {})}
            data = self.client.call("GET", "externalcontact/get", params=params)
            contact = contact or dict(data.get("external_contact") or {})
            follow.extend(data.get("follow_user") or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return {"external_contact": contact, "follow_user": follow}

    def contacts_by_user(self, userids: Sequence[str], *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every (member, customer) item of these members (``batch/get_by_user``):
        at most 100 members per call (more are split), ``limit`` clamped to 100 as WeCom does."""
        ids = list(dict.fromkeys(userids))
        if not ids:
            raise InvalidMessage("contacts_by_user needs at least one member userid")
        size = max(1, min(int(limit), self.limits.batch_limit))
        for start in range(0, len(ids), self.limits.batch_members):
            chunk = ids[start : start + self.limits.batch_members]
            cursor = ""
            while True:
                data = self.client.call("POST", "externalcontact/batch/get_by_user",
                                        body={"userid_list": chunk, "cursor": cursor, "limit": size})
                yield from data.get("external_contact_list") or []
                cursor = str(data.get("next_cursor") or "")
                if not cursor:
                    break

    # -- transfers --------------------------------------------------------------------------------
    def _check_transfer(self, handover: str, takeover: str, external_userids: Sequence[str]) -> list[str]:
        ids = list(external_userids)
        if not ids:
            raise InvalidMessage("a transfer needs at least one external_userid")
        if len(ids) > self.limits.per_call:
            raise InvalidMessage(f"WeCom transfers at most {self.limits.per_call} customers per call, got "
                                 f"{len(ids)}; split the list")
        if handover == takeover:
            raise InvalidMessage(f"handover and takeover are the same member ({handover!r}); WeCom refuses it "
                                 "(40130)")
        return ids

    def transfer_customer(self, handover: str, takeover: str, external_userids: Sequence[str], *,
                          message: str | None = None) -> dict[str, int]:
        """在职继承: start transferring customers; ``external_userid -> errcode`` (0 = started:
        WeCom takes over after 24 hours unless the customer refuses). WeCom answers 0 at
        the top even when some customers fail: read every item."""
        ids = self._check_transfer(handover, takeover, external_userids)
        if message is not None and len(message) > self.limits.message_chars:
            raise InvalidMessage(f"transfer_success_msg is limited to {self.limits.message_chars} characters, "
                                 f"got {len(message)}")
        body: dict[str, Any] = {"handover_userid": handover, "takeover_userid": takeover, "external_userid": ids}
        if message:
            body["transfer_success_msg"] = message
        data = self.client.call("POST", "externalcontact/transfer_customer", body=body)
        return _per_customer(data, ids)

    def resigned_transfer_customer(self, handover: str, takeover: str,
                                   external_userids: Sequence[str]) -> dict[str, int]:
        """离职继承: as :meth:`transfer_customer` for a resigned member (no message)."""
        ids = self._check_transfer(handover, takeover, external_userids)
        data = self.client.call("POST", "externalcontact/resigned/transfer_customer",
                                body={"handover_userid": handover, "takeover_userid": takeover,
                                      "external_userid": ids})
        return _per_customer(data, ids)

    def transfer_result(self, handover: str, takeover: str, *, resigned: bool = False) -> Iterator[dict[str, Any]]:
        """Every ``customer{external_userid, status, takeover_time}`` of the pair's transfers,
        following ``next_cursor``. Status 1 done, 2 waiting, 3 refused, 4 cap reached, 5 no record."""
        path = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
        cursor = ""
        while True:
            data = self.client.call("POST", path, body={"handover_userid": handover, "takeover_userid": takeover,
                                                        "cursor": cursor})
            yield from data.get("customer") or []
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return

    def unassigned(self, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Customers of resigned members waiting for inheritance (``get_unassigned_list``),
        paged by ``cursor`` until ``next_cursor`` is empty or ``is_last``."""
        if not 1 <= page_size <= self.limits.unassigned_page:
            raise InvalidMessage(f"page_size must be 1..{self.limits.unassigned_page}, got {page_size}")
        cursor = ""
        while True:
            data = self.client.call("POST", "externalcontact/get_unassigned_list",
                                    body={"cursor": cursor, "page_size": page_size})
            yield from data.get("info") or []
            cursor = str(data.get("next_cursor") or "")
            if not cursor or data.get("is_last"):
                return


def _per_customer(data: dict[str, Any], ids: Iterable[str]) -> dict[str, int]:
    results = {str(c.get("external_userid")): int(c.get("errcode") or 0) for c in data.get("customer") or []}
    # A customer missing from the answer was not started: report it as WeCom's "invalid" code.
    return {e: results.get(e, 40096) for e in ids}
