"""Fission metrics computed from the referral graph and the funnel counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...models.referrals import FissionStats, Funnel

if TYPE_CHECKING:
    from ...storage.base import Transaction

__all__ = ["compute_stats"]

_STAGES = ("sent", "scanned", "bound", "converted")


def _funnel(counts: dict[str, int]) -> Funnel:
    return Funnel(**{stage: counts.get(stage, 0) for stage in _STAGES})


def compute_stats(tx: Transaction, campaign: str | None, top: int) -> FissionStats:
    """See :class:`~siyu.models.referrals.FissionStats` for the definitions."""
    bindings = [b for b in tx.referrals.bindings(campaign=campaign) if b.status == "active"]
    parent = {b.invitee_id: b.inviter_id for b in bindings}
    seeds = {b.inviter_id for b in bindings} - set(parent)
    generation: dict[int, int] = {}
    for start in parent:
        chain = []
        node = start
        while node in parent and node not in generation:
            chain.append(node)
            node = parent[node]
        level = generation.get(node, 0)
        for member in reversed(chain):
            level += 1
            generation[member] = level
    per_generation: dict[int, int] = {}
    for level in generation.values():
        per_generation[level] = per_generation.get(level, 0) + 1

    totals: dict[str, int] = {}
    by_state: dict[str, dict[str, int]] = {}
    for (_, state, stage), n in tx.referrals.funnel(campaign).items():
        totals[stage] = totals.get(stage, 0) + n
        by_state.setdefault(state, {})[stage] = by_state.setdefault(state, {}).get(stage, 0) + n
    codes, owners = tx.referrals.code_stats(campaign)
    sent = totals.get("sent", 0) or codes
    sharers = owners or len({b.inviter_id for b in bindings})
    new_users = len(parent)
    k_factor = (sent / sharers) * (new_users / sent) if sent and sharers else 0.0
    return FissionStats(
        campaign=campaign,
        seed_users=len(seeds),
        new_users=new_users,
        fission_rate=new_users / len(seeds) if seeds else 0.0,
        invites_sent=sent,
        k_factor=k_factor,
        max_depth=max(per_generation, default=0),
        generations=dict(sorted(per_generation.items())),
        funnel=_funnel(totals),
        by_channel_state={state: _funnel(counts) for state, counts in sorted(by_state.items())},
        top_inviters=tx.referrals.leaderboard(campaign, top, ["active"]),
    )
