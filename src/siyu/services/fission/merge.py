"""What a user merge does to the fission tools, and how unmerge undoes it.

When ``drop`` merges into ``keep`` the two accounts are one person, so what
``drop`` earned, bought and joined follows to ``keep``:

- **commissions**: entries ``drop`` earns (as distributor) move to ``keep``,
  and so do entries paid on ``drop``'s orders (``buyer_id``), since the orders
  themselves move;
- **任务宝 grants**: ``drop``'s stage grants move to ``keep`` — except a stage
  ``keep`` was granted too. A person gets each stage of a task once, so that
  second grant stays on the merged-away record (nothing is clawed back, and
  nothing is granted again). The invitees move with the graph, so ``keep``'s
  progress is the two accounts' invites together; stages newly reached that
  way are granted at the next evaluation;
- **拼团 slots**: ``drop``'s slot in a group (and the lead, if ``drop`` opened
  it) moves to ``keep`` — unless ``keep`` holds a slot in that group already:
  then both slots stay as they are (a group's membership is not rewritten);
- **purchases** the fission rules read (purchase-based invites) move with the
  orders, and **fraud holds** about ``drop`` point at ``keep``.

Every move is listed in the merge record by id, and unmerge moves exactly
those back. Whatever was decided between the merge and the unmerge stands
(a commission settled or refunded, a grant issued to ``keep``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...storage.base import Transaction

__all__ = ["merge_fission", "unmerge_fission"]


def merge_fission(tx: Transaction, keep: int, drop: int) -> dict[str, Any]:
    """Move ``drop``'s fission data to ``keep``; returns the ids moved (JSON-able)."""
    earned = [r.id for r in tx.fission.commissions(distributor_id=drop)]
    bought = [r.id for r in tx.fission.commissions(buyer_id=drop)]
    tx.fission.move_commissions(earned, distributor_id=keep)
    tx.fission.move_commissions(bought, buyer_id=keep)
    keep_stages = {(g.task_id, g.stage) for g in tx.fission.grants(None, keep)}
    grants = [g.id for g in tx.fission.grants(None, drop) if (g.task_id, g.stage) not in keep_stages]
    tx.fission.move_grants(grants, keep)
    keep_groups = set(tx.fission.groups(status=None, expired_by=None, user_id=keep))
    groups = [g for g in tx.fission.groups(status=None, expired_by=None, user_id=drop) if g not in keep_groups]
    tx.fission.move_memberships(groups, drop, keep)
    purchases = tx.referrals.purchase_orders(drop)
    tx.referrals.move_purchases(purchases, keep)
    holds = [h.id for h in tx.referrals.holds(None, None) if h.user_id == drop]
    tx.referrals.move_holds(holds, user_id=keep)
    return {"commissions_earned": earned, "commissions_bought": bought, "grants": grants, "groups": groups,
            "purchases": purchases, "holds": holds}


def unmerge_fission(tx: Transaction, keep: int, drop: int, record: dict[str, Any]) -> None:
    """Move back to ``drop`` exactly what :func:`merge_fission` moved."""
    tx.referrals.move_holds(record["holds"], user_id=drop)
    tx.referrals.move_purchases(record["purchases"], drop)
    tx.fission.move_memberships(record["groups"], keep, drop)
    tx.fission.move_grants(record["grants"], drop)
    tx.fission.move_commissions(record["commissions_bought"], buyer_id=drop)
    tx.fission.move_commissions(record["commissions_earned"], distributor_id=drop)
