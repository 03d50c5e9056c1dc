"""Fission metrics computed from the referral graph and the funnel counters.

The one definition of the K-factor lives here (see
:class:`~siyu.models.referrals.FissionStats`); reports, the CLI and charts
show :attr:`FissionStats.k_factor` and never compute their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...models.referrals import Binding, FissionStats, Funnel

if TYPE_CHECKING:
    from ...storage.base import Transaction

__all__ = ["compute_stats", "k_factor"]

#: Binding statuses that count as bound: a held binding is bound until a review rejects it (which removes it).
_BOUND = ("active", "held")


def k_factor(invites_sent: int, inviters: int, new_users: int) -> float:
    """The viral coefficient: invites sent per inviter × the share of invites that became new users.

    ``(invites_sent / inviters) * (new_users / invites_sent)``; 0 when nobody
    invited or nothing was sent."""
    if not invites_sent or not inviters:
        return 0.0
    return (invites_sent / inviters) * (new_users / invites_sent)


def _funnel(recorded: dict[str, int], bound: int, converted: int) -> Funnel:
    # Everyone who bound had an invitation sent to them and opened it, even where the shop did not record
    # the share or the scan: a stage counts at least as many as the next one, so the funnel never widens.
    scanned = max(recorded.get("scanned", 0), bound)
    return Funnel(sent=max(recorded.get("sent", 0), scanned), scanned=scanned, bound=bound, converted=converted)


def _add(a: Funnel, b: Funnel) -> Funnel:
    return Funnel(sent=a.sent + b.sent, scanned=a.scanned + b.scanned, bound=a.bound + b.bound,
                  converted=a.converted + b.converted)


def _inviters(tx: Transaction, campaign: str | None, bound: list[Binding]) -> int:
    """Users who shared (a recorded share) or brought someone (a bound invitee), a merged-away user
    counted as the user they were merged into."""
    people = tx.referrals.sharers(campaign) | {b.inviter_id for b in bound}
    statuses = tx.users.statuses(sorted(people))
    resolved = set()
    for uid in people:
        for _ in range(64):  # merges chain (a into b, b into c); a bound keeps a corrupt chain from spinning
            status, merged_into = statuses.get(uid, ("active", None))
            if status != "merged" or merged_into is None:
                break
            uid = merged_into
            if uid not in statuses:
                statuses.update(tx.users.statuses([uid]))
        resolved.add(uid)
    return len(resolved)


def compute_stats(tx: Transaction, campaign: str | None, top: int) -> FissionStats:
    """See :class:`~siyu.models.referrals.FissionStats` for the definitions."""
    bound = [b for b in tx.referrals.bindings(campaign=campaign) if b.status in _BOUND]
    bindings = [b for b in bound if b.status == "active"]
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

    # Bound and converted come from the bindings themselves, so a binding a fraud review rejects (or an
    # operator unbinds) leaves them; sends and scans are anonymous counters.
    customers = tx.referrals.customers([b.invitee_id for b in bound])
    members: dict[tuple[str, str], list[int]] = {}
    for b in bound:
        counts = members.setdefault((b.campaign or "", b.channel_state or ""), [0, 0])
        counts[0] += 1
        first_order = customers.get(b.invitee_id)
        counts[1] += first_order is not None and first_order >= b.bound_at
    recorded: dict[tuple[str, str], dict[str, int]] = {}
    for (camp, state, stage), n in tx.referrals.funnel(campaign).items():
        if stage in ("sent", "scanned"):
            recorded.setdefault((camp, state), {})[stage] = n
    total = Funnel()
    by_state: dict[str, Funnel] = {}
    for key in sorted(set(recorded) | set(members)):
        cell = _funnel(recorded.get(key, {}), *members.get(key, (0, 0)))
        total = _add(total, cell)
        by_state[key[1]] = _add(by_state.get(key[1], Funnel()), cell)

    inviters = _inviters(tx, campaign, bound)
    new_users = len(parent)
    return FissionStats(
        campaign=campaign,
        seed_users=len(seeds),
        new_users=new_users,
        fission_rate=new_users / len(seeds) if seeds else 0.0,
        invites_sent=total.sent,
        inviters=inviters,
        k_factor=k_factor(total.sent, inviters, new_users),
        max_depth=max(per_generation, default=0),
        generations=dict(sorted(per_generation.items())),
        funnel=total,
        by_channel_state=dict(sorted(by_state.items())),
        top_inviters=tx.referrals.leaderboard(campaign, top, ["active"]),
    )
