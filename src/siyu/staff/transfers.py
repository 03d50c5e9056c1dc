"""Handing customers from one staff member to another (在职转接 / 离职继承).

Without WeCom (:meth:`Transfers.connect` not called) a transfer is done at
once: the handover member's relation ends as ``transferred``, the takeover
member gets an active relation with the same remark, tags and source, and
ownership moves. With WeCom the transfer is *started*: WeCom takes over after
24 hours unless the customer refuses, so each customer's transfer stays
``pending`` until :meth:`Transfers.poll` reads ``transfer_result`` (or a
``transfer_fail`` callback arrives).

Every customer gets its own result; WeCom's per-customer refusals (40128 quota,
40129 already in transfer, 40131 not followed, 40097 not resigned) never fail the
batch. Limits WeCom documents are checked first, from siyu's own records: a
customer already being transferred, not followed by the handover member, or
transferred twice within 90 days (in-service) is refused without a call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from .._validation import check_text, check_user_id
from ..errors import ChannelError, NotFound, ValidationError
from ..events import TransferFinished, TransferStarted
from ..services._common import require_users
from .models import StaffStatus, Transfer, TransferStatus
from .service import _require_member, check_userid
from .wecom import LIMITS, StaffApi

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.users import Users
    from ..storage.base import Transaction
    from .service import Staff

__all__ = ["ERRCODES", "RESULT_STATUSES", "Transfers"]

log = logging.getLogger("siyu.staff")

#: WeCom per-customer transfer codes (global error table /90455).
ERRCODES: dict[int, TransferStatus] = {
    40128: TransferStatus.QUOTA_EXHAUSTED,
    40129: TransferStatus.IN_TRANSFER,
    40100: TransferStatus.IN_TRANSFER,
    40131: TransferStatus.NOT_FOLLOWED,
    40097: TransferStatus.NOT_RESIGNED,
}
#: ``transfer_result`` statuses: 1 done, 2 waiting, 3 customer refused, 4 takeover cap, 5 no record.
RESULT_STATUSES: dict[int, TransferStatus] = {
    1: TransferStatus.DONE,
    2: TransferStatus.PENDING,
    3: TransferStatus.REFUSED,
    4: TransferStatus.CAP_REACHED,
    5: TransferStatus.NO_RECORD,
}
#: Transfers WeCom accepted: they count towards the 2-per-90-days quota.
_COUNTED = (TransferStatus.PENDING, TransferStatus.DONE, TransferStatus.REFUSED, TransferStatus.CAP_REACHED)
_EXTERNAL = "wecom_external_userid"


class Transfers:
    """``ws.staff.transfers``: start, follow and reconcile customer transfers."""

    def __init__(self, uow: UnitOfWork, *, staff: Staff, users: Users) -> None:
        self._uow = uow
        self._staff = staff
        self._users = users
        self.api: StaffApi | None = None

    def connect(self, api: StaffApi) -> None:
        """Transfer through WeCom from now on (this workspace object)."""
        if not isinstance(api, StaffApi):
            raise ValidationError(f"connect() takes a siyu.staff.wecom.StaffApi, got {api!r}")
        self.api = api

    # -- start ---------------------------------------------------------------------------
    def transfer(self, user_ids: Sequence[int], *, from_: str, to: str, resigned: bool = False,
                 message: str | None = None) -> list[Transfer]:
        """Hand ``user_ids`` over from member ``from_`` to member ``to``; one :class:`Transfer`
        per customer, in the order given (duplicates once). ``resigned=True`` is 离职继承
        (``from_`` must have resigned); ``message`` is sent to each customer after an
        in-service transfer (≤200 characters; WeCom's default text when omitted)."""
        handover, takeover = check_userid(from_, "from_"), check_userid(to, "to")
        if handover == takeover:
            raise ValidationError(f"from_ and to are the same member ({handover!r}); choose another takeover member")
        if message is not None:
            check_text(message, "message", max_length=LIMITS.message_chars)
        if resigned:
            message = None
        if isinstance(user_ids, int | str) or not isinstance(user_ids, Sequence):
            raise ValidationError("user_ids must be a list of user ids")
        ids = list(dict.fromkeys(user_ids))
        now = self._uow.now()
        kind = "local" if self.api is None else "resigned" if resigned else "onjob"
        with self._uow.write() as tx:
            require_users(tx, ids, lock=True)
            _require_member(tx, handover)
            if _require_member(tx, takeover).status is not StaffStatus.ACTIVE:
                raise ValidationError(f"the takeover member {takeover!r} has resigned; choose an active member")
            results = self._claim(tx, ids, handover, takeover, kind, resigned, now)
        if self.api is not None:
            results = self._start(results, message=message)
        order = {uid: i for i, uid in enumerate(ids)}
        return sorted(results, key=lambda t: order[t.user_id])

    def _claim(self, tx: Transaction, ids: list[int], handover: str, takeover: str, kind: str, resigned: bool,
               now: datetime) -> list[Transfer]:
        """Inside the locked write: refuse what siyu knows WeCom would refuse; record the rest
        (as done for a local transfer, as claimed-pending for WeCom)."""
        member = tx.staff.members([handover])[0]
        relations = {r.user_id: r for r in tx.staff.relations(ids) if r.staff == handover}
        window = now - timedelta(days=LIMITS.window_days)
        history: dict[int, list[Transfer]] = {}
        for t in tx.staff.transfers(user_ids=ids, status=[*_COUNTED], since=window):
            history.setdefault(t.user_id, []).append(t)
        results: list[Transfer] = []
        for uid in ids:
            past = history.get(uid, [])
            status: TransferStatus | None = None
            if resigned and member.status is not StaffStatus.RESIGNED:
                status = TransferStatus.NOT_RESIGNED
            elif uid not in relations or not relations[uid].active:
                status = TransferStatus.NOT_FOLLOWED
            elif any(t.status is TransferStatus.PENDING for t in past):
                status = TransferStatus.IN_TRANSFER
            elif kind == "onjob" and sum(t.kind == "onjob" for t in past) >= LIMITS.per_customer:
                status = TransferStatus.QUOTA_EXHAUSTED
            done = status is None and kind == "local"
            row = Transfer(id=0, user_id=uid, from_staff=handover, to_staff=takeover, kind=kind,
                           status=status or (TransferStatus.DONE if done else TransferStatus.PENDING),
                           started_at=now, finished_at=now if status is not None or done else None)
            row = attrs.evolve(row, id=tx.staff.add_transfer(row))
            if done:
                tx.emit(TransferStarted(at=now, transfer_id=row.id, user_id=uid, from_staff=handover,
                                        to_staff=takeover, kind=kind))
                self._staff._take_over(tx, uid, handover, takeover, now, f"transfer:{row.id}")
                self._finished(tx, row)
            results.append(row)
        return results

    def _start(self, claimed: list[Transfer], *, message: str | None) -> list[Transfer]:
        """Call WeCom for the claimed transfers (100 per call) and store each customer's answer."""
        assert self.api is not None
        todo = [t for t in claimed if t.status is TransferStatus.PENDING]
        done = {t.id: t for t in claimed if t.status is not TransferStatus.PENDING}
        externals = self._externals([t.user_id for t in todo])
        missing = [t for t in todo if t.user_id not in externals]
        todo = [t for t in todo if t.user_id in externals]
        answers: dict[int, int] = {t.id: 40096 for t in missing}
        for start in range(0, len(todo), LIMITS.per_call):
            chunk = todo[start : start + LIMITS.per_call]
            head = chunk[0]
            ext_ids = [externals[t.user_id] for t in chunk]
            try:
                if head.kind == "resigned":
                    codes = self.api.resigned_transfer_customer(head.from_staff, head.to_staff, ext_ids)
                else:
                    codes = self.api.transfer_customer(head.from_staff, head.to_staff, ext_ids, message=message)
            except ChannelError as exc:
                if exc.code == "timeout_unknown":
                    continue  # maybe started: stays pending, poll() asks WeCom
                with self._uow.write() as tx:
                    tx.staff.remove_transfers([t.id for t in todo[start:]])
                raise
            answers.update((t.id, codes[externals[t.user_id]]) for t in chunk)
        now = self._uow.now()
        with self._uow.write() as tx:
            for t in [*missing, *todo]:
                code = answers.get(t.id)
                if code is None:
                    done[t.id] = t
                elif code == 0:
                    row = attrs.evolve(t, takeover_at=now + timedelta(hours=LIMITS.takeover_hours))
                    tx.staff.update_transfer(row)
                    tx.emit(TransferStarted(at=now, transfer_id=t.id, user_id=t.user_id, from_staff=t.from_staff,
                                            to_staff=t.to_staff, kind=t.kind))
                    done[t.id] = row
                else:
                    row = attrs.evolve(t, status=ERRCODES.get(code, TransferStatus.FAILED), errcode=code,
                                       finished_at=now)
                    tx.staff.update_transfer(row)
                    done[t.id] = row
        return list(done.values())

    # -- follow up ------------------------------------------------------------------------------
    def poll(self) -> list[Transfer]:
        """Ask WeCom how pending transfers went (``transfer_result`` per member pair) and
        apply it: done moves the relation and ownership; a refusal leaves the customer with
        the handover member (in-service) or loses them (resigned). Returns the transfers
        whose status changed. Without WeCom there is nothing to poll."""
        if self.api is None:
            return []
        with self._uow.read() as tx:
            pending = tx.staff.transfers(status=[TransferStatus.PENDING])
        pairs = sorted({(t.from_staff, t.to_staff, t.kind) for t in pending})
        changed: list[Transfer] = []
        for handover, takeover, kind in pairs:
            rows = [t for t in pending if (t.from_staff, t.to_staff, t.kind) == (handover, takeover, kind)]
            changed.extend(self._reconcile(rows, list(self.api.transfer_result(
                handover, takeover, resigned=kind == "resigned"))))
        return changed

    def _reconcile(self, rows: list[Transfer], answers: list[dict[str, object]]) -> list[Transfer]:
        externals = self._externals([t.user_id for t in rows])
        by_external = {str(a.get("external_userid")): a for a in answers}
        now = self._uow.now()
        changed: list[Transfer] = []
        with self._uow.write() as tx:
            require_users(tx, [t.user_id for t in rows], lock=True)
            current = {t.id: t for t in tx.staff.transfers(user_ids=[t.user_id for t in rows])}
            for row in rows:
                row = current.get(row.id, row)
                answer = by_external.get(externals.get(row.user_id, ""))
                if answer is None or row.status is not TransferStatus.PENDING:
                    continue
                raw = _int(answer.get("status"))
                status = RESULT_STATUSES.get(raw) if raw is not None else None
                if status is None:
                    log.warning("transfer %s: unknown transfer_result status %r kept pending", row.id, raw)
                    if raw != row.raw_status:
                        tx.staff.update_transfer(attrs.evolve(row, raw_status=raw))
                    continue
                takeover = _int(answer.get("takeover_time"))
                update = attrs.evolve(row, raw_status=raw, status=status,
                                      takeover_at=row.takeover_at if not takeover else
                                      datetime.fromtimestamp(takeover, now.tzinfo),
                                      finished_at=None if status is TransferStatus.PENDING else now)
                if update == row:
                    continue
                tx.staff.update_transfer(update)
                if status is TransferStatus.PENDING:
                    continue  # still waiting (its takeover time may have been read)
                changed.append(update)
                if status is TransferStatus.DONE:
                    self._staff._take_over(tx, row.user_id, row.from_staff, row.to_staff, now, f"transfer:{row.id}")
                self._finished(tx, update)
        for t in changed:
            if t.status is TransferStatus.REFUSED and t.kind == "resigned":
                # A refused inheritance loses the customer (WeCom deletes the resigned member's relation).
                self._staff.unfollow(t.user_id, t.from_staff, by="customer")
        return changed

    def failed(self, user_id: int, takeover: str, reason: str) -> list[Transfer]:
        """A ``transfer_fail`` callback: ``takeover`` is the takeover member (the event does
        not name the handover member). With WeCom, the pending transfers of the customer to
        that member are re-read from ``transfer_result``; without it the reason decides
        (``customer_refused`` → refused, ``customer_limit_exceed`` → cap reached)."""
        check_user_id(user_id)
        check_text(takeover, "takeover")
        check_text(reason, "reason")
        with self._uow.read() as tx:
            rows = [t for t in tx.staff.transfers(user_ids=[user_id], status=[TransferStatus.PENDING])
                    if t.to_staff == takeover]
        if not rows:
            return []
        if self.api is not None:
            out: list[Transfer] = []
            for t in rows:
                out.extend(self._reconcile([t], list(self.api.transfer_result(
                    t.from_staff, t.to_staff, resigned=t.kind == "resigned"))))
            return out
        status = 3 if reason == "customer_refused" else 4
        return self._reconcile(rows, [{"external_userid": e, "status": status}
                                      for e in self._externals([user_id]).values()])

    def of(self, user_id: int) -> list[Transfer]:
        """A customer's transfers, oldest first."""
        check_user_id(user_id)
        with self._uow.read() as tx:
            return tx.staff.transfers(user_ids=[user_id])

    def pending(self) -> list[Transfer]:
        """Transfers WeCom has not finished yet."""
        with self._uow.read() as tx:
            return tx.staff.transfers(status=[TransferStatus.PENDING])

    # -- internals -----------------------------------------------------------------------------------
    def _finished(self, tx: Transaction, t: Transfer) -> None:
        tx.emit(TransferFinished(at=self._uow.now(), transfer_id=t.id, user_id=t.user_id, from_staff=t.from_staff,
                                 to_staff=t.to_staff, status=str(t.status)))

    def _externals(self, user_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for uid in dict.fromkeys(user_ids):
            try:
                user = self._users.get(uid)
            except NotFound:
                continue
            found = [i.value for i in user.identities if i.kind == _EXTERNAL]
            if found:
                out[uid] = found[0]
        return out


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None
