"""Fraud guards: hold suspicious bindings and rewards for a human to review.

Checks (each configurable, each can be turned off with ``None``):

- a burst of bindings from one inviter (card farms bind dozens a minute);
- invitees sharing one device, or phones from one number batch;
- invitees that never activate (a reward earned only by dormant accounts);
- invitees deleting the shop right after the inviter's reward.

A held binding stays in the graph (so the user is not up for grabs) but
earns nothing until released; a held reward is not issued until released.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..._validation import check_optional_text
from ...errors import Conflict, NotFound, ValidationError
from ...events import ReferralHeld
from ...models.referrals import Binding, FraudSettings, Hold, InviteTask
from .._common import check_int, check_text

if TYPE_CHECKING:
    from ..._uow import UnitOfWork
    from ...storage.base import Transaction
    from ..referrals import Referrals

__all__ = ["FraudGuards"]

_KEY = "referrals.fraud"


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


class FraudGuards:
    """``ws.referrals.fraud``: configure the guards, list held items, release or reject them."""

    def __init__(self, uow: UnitOfWork, referrals: Referrals) -> None:
        self._uow = uow
        self._referrals = referrals

    # -- settings --------------------------------------------------------------------
    def settings(self) -> FraudSettings:
        with self._uow.read() as tx:
            return self._settings(tx)

    @staticmethod
    def _settings(tx: Transaction) -> FraudSettings:
        raw = tx.meta.get(_KEY)
        if raw is None:
            return FraudSettings()
        data = json.loads(raw)
        burst = data["burst"]
        prefix = data["phone_prefix"]
        return FraudSettings(
            burst=None if burst is None else (int(burst[0]), timedelta(seconds=burst[1])),
            shared_device=data["shared_device"],
            phone_prefix=None if prefix is None else (int(prefix[0]), int(prefix[1])),
            inactive_share=data["inactive_share"],
            leave_after_reward=_delta(data["leave_after_reward"]),
        )

    def configure(self, **changes: Any) -> FraudSettings:
        """Change guards by name (see :class:`~siyu.models.referrals.FraudSettings`);
        pass ``None`` to turn one off. Example::

            ws.referrals.fraud.configure(burst=(10, timedelta(minutes=10)), shared_device=None)
        """
        unknown = set(changes) - {"burst", "shared_device", "phone_prefix", "inactive_share", "leave_after_reward"}
        if unknown:
            raise ValidationError(f"unknown fraud guard(s) {sorted(unknown)}; see FraudSettings for the names")
        burst = changes.get("burst", ...)
        if burst not in (None, ...):
            if not (isinstance(burst, tuple) and len(burst) == 2 and isinstance(burst[1], timedelta)):
                raise ValidationError(f"burst must be (count, timedelta) or None, got {burst!r}")
            check_int(burst[0], "burst count", minimum=1)
        if changes.get("shared_device") is not None:
            check_int(changes["shared_device"], "shared_device", minimum=2)
        prefix = changes.get("phone_prefix")
        if prefix is not None:
            if not (isinstance(prefix, tuple) and len(prefix) == 2):
                raise ValidationError(f"phone_prefix must be (digits, count) or None, got {prefix!r}")
            check_int(prefix[0], "phone_prefix digits", minimum=3, maximum=11)
            check_int(prefix[1], "phone_prefix count", minimum=2)
        share = changes.get("inactive_share")
        if share is not None and (not isinstance(share, int | float) or not 0 <= share < 1):
            raise ValidationError(f"inactive_share must be a number in [0, 1) or None, got {share!r}")
        leave = changes.get("leave_after_reward", ...)
        if leave not in (None, ...) and not isinstance(leave, timedelta):
            raise ValidationError(f"leave_after_reward must be a timedelta or None, got {leave!r}")
        with self._uow.write() as tx:
            current = self._settings(tx)
            data = {
                "burst": None if current.burst is None else [current.burst[0], current.burst[1].total_seconds()],
                "shared_device": current.shared_device,
                "phone_prefix": None if current.phone_prefix is None else list(current.phone_prefix),
                "inactive_share": current.inactive_share,
                "leave_after_reward": _seconds(current.leave_after_reward),
            }
            for name, value in changes.items():
                if name == "burst":
                    data[name] = None if value is None else [value[0], value[1].total_seconds()]
                elif name == "leave_after_reward":
                    data[name] = _seconds(value)
                elif name == "phone_prefix":
                    data[name] = None if value is None else list(value)
                else:
                    data[name] = value
            tx.meta.set(_KEY, json.dumps(data))
            return self._settings(tx)

    # -- checks (called inside the caller's transaction) -----------------------------------
    def _check_binding(self, tx: Transaction, binding: Binding) -> list[str]:
        settings = self._settings(tx)
        reasons: list[str] = []
        inviter = binding.inviter_id
        if settings.burst is not None:
            count, window = settings.burst
            recent = tx.referrals.count_bound_since(inviter, binding.bound_at - window)
            if recent + 1 > count:
                reasons.append(f"burst: {recent + 1} bindings by inviter {inviter} within {window}")
        siblings: list[Binding] | None = None
        if settings.shared_device is not None and binding.device is not None:
            siblings = tx.referrals.bindings(inviter_id=inviter)
            same = 1 + sum(1 for b in siblings if b.device == binding.device and b.invitee_id != binding.invitee_id)
            if same >= settings.shared_device:
                reasons.append(f"shared device: {same} invitees of {inviter} on one device")
        if settings.phone_prefix is not None:
            digits, count = settings.phone_prefix
            own = _national(tx, binding.invitee_id)
            if own is not None:
                if siblings is None:
                    siblings = tx.referrals.bindings(inviter_id=inviter)
                same = 1 + sum(
                    1 for b in siblings
                    if b.invitee_id != binding.invitee_id
                    and (p := _national(tx, b.invitee_id)) is not None and p[:digits] == own[:digits]
                )
                if same >= count:
                    reasons.append(f"phone batch: {same} invitees of {inviter} with phones starting {own[:digits]}")
        return reasons

    def _check_reward(self, tx: Transaction, task: InviteTask, user_id: int, counted: list[int]) -> list[str]:
        settings = self._settings(tx)
        if settings.inactive_share is None or not counted:
            return []
        active = set(tx.referrals.actions(counted, None)) | set(tx.referrals.customers(counted))
        inactive = [u for u in counted if u not in active]
        share = len(inactive) / len(counted)
        if share > settings.inactive_share:
            return [f"inactive invitees: {len(inactive)} of {len(counted)} counted invitees never did anything"]
        return []

    def _hold(self, tx: Transaction, kind: str, subject_id: int, user_id: int, reasons: list[str],
              at: datetime) -> int:
        hold_id = tx.referrals.add_hold(kind, subject_id, user_id, reasons, at)
        tx.emit(ReferralHeld(at=at, hold_id=hold_id, kind=kind, user_id=user_id, subject_id=subject_id,
                             reasons=tuple(reasons)))
        return hold_id

    def _on_leave(self, tx: Transaction, user_id: int, at: datetime) -> None:
        window = self._settings(tx).leave_after_reward
        binding = tx.referrals.binding(user_id)
        if window is None or binding is None:
            return
        open_holds = {h.subject_id for h in tx.referrals.holds("held", "reward")}
        for grant in tx.fission.grants(None, binding.inviter_id):
            if grant.status == "issued" and grant.at <= at <= grant.at + window and grant.id not in open_holds:
                self._hold(tx, "reward", grant.id, grant.user_id,
                           [f"invitee {user_id} left {at - grant.at} after the reward"], at)

    # -- review ------------------------------------------------------------------------------
    def held(self, kind: str | None = None) -> list[Hold]:
        """Items waiting for review (``kind``: ``"binding"`` or ``"reward"``), oldest first."""
        check_optional_text(kind, "kind")
        with self._uow.read() as tx:
            return tx.referrals.holds("held", kind)

    def holds(self, status: str | None = None) -> list[Hold]:
        """Every hold, decided or not (filter by ``status``)."""
        check_optional_text(status, "status")
        with self._uow.read() as tx:
            return tx.referrals.holds(status, None)

    def _open(self, tx: Transaction, hold_id: int) -> Hold:
        check_int(hold_id, "hold_id", minimum=1)
        hold = tx.referrals.get_hold(hold_id)
        if hold is None:
            raise NotFound(f"no hold with id {hold_id}; list them with ws.referrals.fraud.held()")
        if hold.status != "held":
            raise Conflict(f"hold {hold_id} was already {hold.status} by {hold.decided_by}; nothing to do")
        return hold

    def release(self, hold_id: int, *, by: str = "api") -> Hold:
        """Approve a held item: a binding becomes active (and counts for tasks),
        a held reward is issued."""
        check_text(by, "by", max_length=128)
        now = self._uow.now()
        with self._uow.write() as tx:
            hold = self._open(tx, hold_id)
            if hold.kind == "binding":
                binding = tx.referrals.binding(hold.subject_id)
                if binding is not None and binding.status == "held" and binding.inviter_id == hold.user_id:
                    tx.referrals.set_status(hold.subject_id, "active")
                    self._referrals.tasks._evaluate_for(tx, binding.inviter_id)
            else:
                grant = tx.fission.grant(hold.subject_id)
                if grant is not None and grant.status == "held":
                    self._referrals.tasks._issue(tx, grant)
            tx.referrals.decide_hold(hold.id, "released", now, by)
            result = tx.referrals.get_hold(hold.id)
        assert result is not None
        return result

    def reject(self, hold_id: int, *, by: str = "api") -> Hold:
        """Refuse a held item: a binding is removed (recorded in the invitee's
        history), a held reward is never issued, an issued one is revoked
        (its points reversed)."""
        check_text(by, "by", max_length=128)
        now = self._uow.now()
        with self._uow.write() as tx:
            hold = self._open(tx, hold_id)
            if hold.kind == "binding":
                self._referrals._serialize(tx, hold.subject_id)
                binding = tx.referrals.binding(hold.subject_id)
                # Only the binding under review goes: one rebound or released since is a later decision.
                if binding is not None and binding.status == "held" and binding.inviter_id == hold.user_id:
                    self._referrals._detach(tx, hold.subject_id, f"fraud review rejected by {by}", now)
            else:
                grant = tx.fission.grant(hold.subject_id)
                if grant is not None:
                    self._referrals.tasks._revoke(tx, grant)
            tx.referrals.decide_hold(hold.id, "rejected", now, by)
            result = tx.referrals.get_hold(hold.id)
        assert result is not None
        return result


def _national(tx: Transaction, user_id: int) -> str | None:
    user = tx.users.get(user_id)
    phone = None if user is None else user.phone
    if phone is None:
        return None
    digits = phone.lstrip("+")
    return digits[2:] if digits.startswith("86") else digits
