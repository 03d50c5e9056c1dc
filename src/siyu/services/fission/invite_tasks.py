"""任务宝 invite tasks: invite N friends before the deadline, get a reward per stage.

A task belongs to a referral campaign: invites bound with that campaign's
codes between ``starts_at`` and ``deadline`` count, once *valid* (see
:class:`~siyu.models.referrals.ValidInvite`). Stage rewards are granted
exactly once per (task, participant, stage) — a unique key in storage, so a
repeated progress event, a retry or two processes racing cannot pay twice.
Progress is re-evaluated whenever a binding or an action of an invitee is
recorded; call :meth:`InviteTasks.evaluate` periodically (e.g. hourly) so
invites that finish their stay window are counted too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..._clock import aware
from ..._validation import check_many, check_optional_id
from ...errors import Conflict, NotFound, SiyuError, ValidationError
from ...events import InviteRewardIssued
from ...models.referrals import Binding, InviteTask, Reward, RewardGrant, Stage, TaskProgress, ValidInvite
from ...models.users import IDENTITY_KINDS
from .._common import check_int, check_text, require_user
from ..points import Credit, Points
from ..products import Products

if TYPE_CHECKING:
    from ..._uow import UnitOfWork
    from ...storage.base import Transaction
    from ..coupons import Coupons
    from ..referrals import Referrals

__all__ = ["InviteTasks"]


def _check_reward(reward: object, where: str) -> Reward:
    if not isinstance(reward, Reward):
        raise ValidationError(f"{where}: the reward must be a Reward (Reward.of_points(100), "
                              f"Reward.of_coupon('new10'), Reward.of_product('sku')), got {reward!r}")
    if reward.kind == "points":
        check_int(reward.points, f"{where}: points", minimum=1, maximum=10_000_000)
    elif reward.kind == "coupon":
        check_text(reward.coupon, f"{where}: coupon", max_length=64)
    elif reward.kind == "product":
        check_text(reward.sku, f"{where}: sku", max_length=64)
        check_int(reward.qty, f"{where}: qty", minimum=1, maximum=1000)
    else:
        raise ValidationError(f"{where}: reward kind must be 'points', 'coupon' or 'product', got {reward.kind!r}")
    return reward


class InviteTasks:
    """``ws.referrals.tasks``: create 任务宝 tasks, follow progress, grant rewards."""

    def __init__(self, uow: UnitOfWork, referrals: Referrals, *, points: Points, coupons: Coupons) -> None:
        self._uow = uow
        self._referrals = referrals
        self._points = points
        self._coupons = coupons

    # -- define ---------------------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        campaign: str,
        stages: Iterable[Stage | tuple[int, Reward]],
        deadline: datetime,
        starts_at: datetime | None = None,
        valid: ValidInvite | None = None,
    ) -> InviteTask:
        """Create a task. ``stages``: ``[(3, Reward.of_points(100)), (10, Reward.of_product("gift"))]``
        — the invite counts must rise. ``valid`` says what makes an invite count
        (default: a new user, no stay window, no action required)."""
        check_text(name, "task name", max_length=64)
        check_text(campaign, "campaign", max_length=64)
        parsed: list[Stage] = []
        for index, raw in enumerate(check_many(stages, "stages", "[(3, Reward.of_points(100))]"), 1):
            stage = raw if isinstance(raw, Stage) else Stage(invites=raw[0], reward=raw[1]) \
                if isinstance(raw, tuple) and len(raw) == 2 else None
            if stage is None:
                raise ValidationError(f"stage {index} must be Stage(...) or (invites, Reward), got {raw!r}")
            check_int(stage.invites, f"stage {index}: invites", minimum=1, maximum=1_000_000)
            _check_reward(stage.reward, f"stage {index}")
            if parsed and stage.invites <= parsed[-1].invites:
                raise ValidationError(f"stage {index} needs {stage.invites} invites, not more than stage "
                                      f"{index - 1} ({parsed[-1].invites}); list stages in rising order")
            parsed.append(stage)
        if not parsed:
            raise ValidationError("a task needs at least one stage, e.g. stages=[(3, Reward.of_points(100))]")
        rule = valid or ValidInvite()
        if not isinstance(rule, ValidInvite):
            raise ValidationError(f"valid must be a ValidInvite, got {rule!r}")
        check_int(rule.stay_days, "stay_days", minimum=0, maximum=365)
        if rule.action is not None:
            check_text(rule.action, "action", max_length=64)
        if rule.identity is not None and rule.identity not in IDENTITY_KINDS:
            raise ValidationError(f"identity must be one of {sorted(IDENTITY_KINDS)}, got {rule.identity!r}")
        now = self._uow.now()
        start = now if starts_at is None else aware(starts_at, "starts_at")
        end = aware(deadline, "deadline")
        if end <= start:
            raise ValidationError(f"deadline {end.isoformat()} must be after the start {start.isoformat()}")
        task = InviteTask(id=0, name=name, campaign=campaign, stages=tuple(parsed), starts_at=start, deadline=end,
                          valid=rule)
        with self._uow.write() as tx:
            for index, stage in enumerate(parsed, 1):
                self._check_prize(tx, stage.reward, f"stage {index}")
            if tx.fission.task_by_name(name) is not None:
                raise Conflict(f"a task named {name!r} exists; pick another name or use ws.referrals.tasks.get")
            task_id = tx.fission.add_task(task, now)
            stored = tx.fission.task(task_id)
        assert stored is not None
        return stored

    def _check_prize(self, tx: Transaction, reward: Reward, where: str) -> None:
        if reward.kind == "product":
            assert reward.sku is not None
            product = Products.require(tx, [reward.sku])[reward.sku]
            if product.role != "fission":
                raise ValidationError(
                    f"{where}: product {reward.sku!r} has role {product.role!s}; only fission (裂变品) products "
                    "can be invite prizes — change its role or pick another product")
        elif reward.kind == "coupon":
            assert reward.coupon is not None
            self._coupons.template(reward.coupon)

    def get(self, task: int | str) -> InviteTask:
        """A task by id or name."""
        with self._uow.read() as tx:
            return self._get(tx, task)

    @staticmethod
    def _get(tx: Transaction, task: int | str) -> InviteTask:
        found = tx.fission.task_by_name(task) if isinstance(task, str) else tx.fission.task(
            check_int(task, "task", minimum=1))
        if found is None:
            raise NotFound(f"no invite task {task!r}; create it with ws.referrals.tasks.create(...)")
        return found

    def all(self) -> list[InviteTask]:
        with self._uow.read() as tx:
            return tx.fission.tasks()

    # -- progress ------------------------------------------------------------------------------
    def _bindings(self, tx: Transaction, task: InviteTask, inviter: int | None) -> list[Binding]:
        return tx.referrals.bindings(campaign=task.campaign, inviter_id=inviter, since=task.starts_at,
                                     until=task.deadline)

    def _classify(self, tx: Transaction, task: InviteTask, bindings: list[Binding],
                  now: datetime) -> tuple[list[int], list[int], list[int]]:
        """``(valid, pending, deducted)`` invitee ids."""
        rule = task.valid
        ids = [b.invitee_id for b in bindings]
        left = tx.referrals.left(ids)
        customers = tx.referrals.customers(ids) if rule.new_only else {}
        actions = tx.referrals.actions(ids, rule.action) if rule.action else {}
        purchases = tx.referrals.purchases(ids) if rule.purchase else {}
        stay = timedelta(days=rule.stay_days)
        valid: list[int] = []
        pending: list[int] = []
        deducted: list[int] = []
        for b in bindings:
            uid = b.invitee_id
            bought = customers.get(uid)
            gone = left.get(uid)
            if (bought is not None and bought < b.bound_at) or (gone is not None and gone < b.bound_at + stay):
                deducted.append(uid)
            elif b.status != "active" or now < b.bound_at + stay or (rule.action and uid not in actions) or (
                    rule.identity and not any(i.kind == rule.identity for i in tx.users.identities(uid))) or (
                    rule.purchase and not any(at >= b.bound_at and refunded < total
                                              for at, total, refunded in purchases.get(uid, ()))):
                pending.append(uid)
            else:
                valid.append(uid)
        return valid, pending, deducted

    def progress(self, task: int | str, user_id: int) -> TaskProgress:
        """Where ``user_id`` stands in a task: valid / pending / deducted invites,
        stages reached and granted, invites still needed for the next stage."""
        now = self._uow.now()
        with self._uow.read() as tx:
            found = self._get(tx, task)
            uid = require_user(tx, user_id, active=False)
            valid, pending, deducted = self._classify(tx, found, self._bindings(tx, found, uid), now)
            granted = tuple(sorted(g.stage for g in tx.fission.grants(found.id, uid)))
        reached = tuple(i for i, s in enumerate(found.stages, 1) if len(valid) >= s.invites)
        upcoming = [s.invites - len(valid) for s in found.stages if s.invites > len(valid)]
        return TaskProgress(task_id=found.id, user_id=uid, valid=len(valid), pending=len(pending),
                            deducted=len(deducted), reached=reached, granted=granted,
                            next_stage_needs=upcoming[0] if upcoming else None)

    def leaderboard(self, task: int | str, *, top: int = 20) -> list[tuple[int, int]]:
        """``(user_id, valid invites)`` best first (ties: lower id)."""
        check_int(top, "top", minimum=1, maximum=10_000)
        now = self._uow.now()
        with self._uow.read() as tx:
            found = self._get(tx, task)
            by_inviter: dict[int, list[Binding]] = {}
            for b in self._bindings(tx, found, None):
                by_inviter.setdefault(b.inviter_id, []).append(b)
            scores = [(uid, len(self._classify(tx, found, bs, now)[0])) for uid, bs in by_inviter.items()]
        return sorted((s for s in scores if s[1] > 0), key=lambda s: (-s[1], s[0]))[:top]

    def grants(self, task: int | str | None = None, *, user_id: int | None = None) -> list[RewardGrant]:
        """Stage rewards granted (issued, held, rejected, revoked), oldest first."""
        with self._uow.read() as tx:
            task_id = None if task is None else self._get(tx, task).id
            return tx.fission.grants(task_id, check_optional_id(user_id, "user_id"))

    # -- granting --------------------------------------------------------------------------------
    def evaluate(self, task: int | str | None = None, *, user_id: int | None = None) -> list[RewardGrant]:
        """Grant every stage reward now due (of one task or all running ones,
        for one participant or all). Safe to call any number of times: a stage
        is granted once. Returns the grants made by this call."""
        with self._uow.write() as tx:
            tasks = tx.fission.tasks() if task is None else [self._get(tx, task)]
            made: list[RewardGrant] = []
            for one in tasks:
                inviters = [require_user(tx, user_id, active=False)] if user_id is not None else sorted(
                    {b.inviter_id for b in self._bindings(tx, one, None)})
                for inviter in inviters:
                    made.extend(self._evaluate(tx, one, inviter))
            return made

    def _evaluate_for(self, tx: Transaction, inviter: int) -> None:
        """Re-evaluate ``inviter`` in every running task (after a binding or an action)."""
        for task in tx.fission.tasks():
            self._evaluate(tx, task, inviter)

    def _evaluate(self, tx: Transaction, task: InviteTask, inviter: int) -> list[RewardGrant]:
        now = self._uow.now()
        # Invites bound before the deadline may finish their stay window after it.
        if now < task.starts_at or now > task.deadline + timedelta(days=task.valid.stay_days):
            return []
        valid, _, _ = self._classify(tx, task, self._bindings(tx, task, inviter), now)
        if not valid:
            return []
        done = {g.stage for g in tx.fission.grants(task.id, inviter)}
        made: list[RewardGrant] = []
        for number, stage in enumerate(task.stages, 1):
            if len(valid) < stage.invites or number in done:
                continue
            reasons = self._referrals.fraud._check_reward(tx, task, inviter, valid)
            draft = RewardGrant(id=0, task_id=task.id, user_id=inviter, stage=number, reward=stage.reward,
                                status="held" if reasons else "pending", at=now)
            grant_id = tx.fission.add_grant(draft)
            if grant_id is None:  # another process granted it first
                continue
            grant = tx.fission.grant(grant_id)
            assert grant is not None
            if reasons:
                self._referrals.fraud._hold(tx, "reward", grant_id, inviter, reasons, now)
            else:
                grant = self._issue(tx, grant)
            made.append(grant)
        return made

    def _reconcile(self, tx: Transaction, inviter: int) -> None:
        """After a refund: reverse stage rewards of purchase-based tasks that the
        inviter no longer reaches. Points are taken back; what cannot be taken
        back automatically (points already spent, a coupon) is held for review."""
        now = self._uow.now()
        for task in tx.fission.tasks():
            if not task.valid.purchase:
                continue
            valid, _, _ = self._classify(tx, task, self._bindings(tx, task, inviter), now)
            for grant in tx.fission.grants(task.id, inviter):
                if grant.status not in ("issued", "held") or len(valid) >= task.stages[grant.stage - 1].invites:
                    continue
                if grant.status == "held":
                    tx.fission.update_grant(grant.id, status="reversed", points_entry_id=None)
                    continue
                try:
                    if grant.points_entry_id is not None:
                        self._points.reverse_in(tx, grant.points_entry_id, key=f"invite-task-refund:{grant.id}",
                                                amount=None, reason="invite_task_refunded", now=now)
                    elif grant.reward.kind != "points":
                        raise NotFound(f"a {grant.reward.kind} reward cannot be taken back automatically")
                except SiyuError as exc:
                    self._referrals.fraud._hold(tx, "reward", grant.id, inviter,
                                                [f"refunds undid stage {grant.stage}, but {exc}"], now)
                    continue
                tx.fission.update_grant(grant.id, status="reversed", points_entry_id=grant.points_entry_id)

    def _issue(self, tx: Transaction, grant: RewardGrant) -> RewardGrant:
        reward = grant.reward
        entry_id: int | None = None
        key = f"invite-task:{grant.task_id}:{grant.user_id}:{grant.stage}"
        try:
            if reward.kind == "points":
                credit = Credit(user_id=grant.user_id, amount=reward.points,
                                reason=f"invite_task:{grant.task_id}:stage{grant.stage}", key=key)
                [entry_id] = self._points.credit(tx, [credit], self._uow.now())
            elif reward.kind == "coupon":
                assert reward.coupon is not None
                self._coupons.issue(reward.coupon, grant.user_id, key=key)
        except SiyuError as exc:
            # A coupon cap reached, a retired template ...: the binding that triggered this must still
            # commit, so the reward waits for an operator instead of failing the whole call.
            tx.fission.update_grant(grant.id, status="held", points_entry_id=None)
            self._referrals.fraud._hold(tx, "reward", grant.id, grant.user_id, [f"could not issue: {exc}"],
                                        self._uow.now())
            held = tx.fission.grant(grant.id)
            assert held is not None
            return held
        tx.fission.update_grant(grant.id, status="issued", points_entry_id=entry_id)
        tx.emit(InviteRewardIssued(at=self._uow.now(), task_id=grant.task_id, user_id=grant.user_id, stage=grant.stage,
                                   kind=reward.kind, points=reward.points, coupon=reward.coupon, sku=reward.sku,
                                   qty=reward.qty if reward.kind == "product" else 0))
        issued = tx.fission.grant(grant.id)
        assert issued is not None
        return issued

    def _revoke(self, tx: Transaction, grant: RewardGrant) -> None:
        if grant.status == "held":
            tx.fission.update_grant(grant.id, status="rejected", points_entry_id=None)
        elif grant.status == "issued":
            if grant.points_entry_id is not None:
                self._points.reverse_in(tx, grant.points_entry_id, key=f"invite-task-revoke:{grant.id}",
                                        amount=None, reason="invite_task_revoked", now=self._uow.now())
            tx.fission.update_grant(grant.id, status="revoked", points_entry_id=grant.points_entry_id)
