"""The A/B decision: which variant won, by a stated test, or "not yet significant"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .models import Decision
from .stats import prob_best, two_proportion_z

__all__ = ["judge"]


def judge(
    campaign_id: int,
    arms: Mapping[str, tuple[int, int]],
    *,
    method: str,
    alpha: float,
    min_sample: int,
    threshold: float,
    seed: int,
    now: datetime,
) -> Decision:
    """Decide among ``arms`` (variant -> (conversions, sends)).

    ``z-test``: the best rate must beat every other arm with a pooled two-sided
    two-proportion z-test at ``alpha`` divided by the number of comparisons.
    ``bayes``: the best arm's posterior P(best) must reach ``threshold``. Any
    arm below ``min_sample`` sends: not yet significant.
    """
    small = {v: n for v, (_, n) in arms.items() if n < min_sample}
    test = "two-proportion z-test (pooled, two-sided)" if method == "z-test" else "Bayesian Beta-Binomial P(best)"
    if len(arms) < 2:
        only = next(iter(arms))
        decision = Decision(campaign_id=campaign_id, winner=only, test="single variant", significant=True,
                            reason=f"only one variant ({only!r}); nothing to compare", at=now, threshold=alpha)
    elif small:
        decision = Decision(
            campaign_id=campaign_id, winner=None, test=test, significant=False, threshold=alpha,
            reason=f"not yet significant: variants {sorted(small)} have fewer than {min_sample} sends "
            f"({small}); wait for more data or lower min_sample", at=now,
        )
    elif method == "z-test":
        best = max(arms, key=lambda v: (arms[v][0] / arms[v][1], v))
        level = alpha / (len(arms) - 1)
        comparisons = []
        worst_p, worst_z = 0.0, 0.0
        for other in arms:
            if other == best:
                continue
            z, p = two_proportion_z(arms[best][0], arms[best][1], arms[other][0], arms[other][1])
            comparisons.append({"against": other, "z": z, "p_value": p,
                                "rates": (arms[best][0] / arms[best][1], arms[other][0] / arms[other][1])})
            if p >= worst_p:
                worst_p, worst_z = p, z
        significant = worst_p < level
        rate = arms[best][0] / arms[best][1]
        reason = (
            f"{best!r} wins: rate {rate:.2%}, z = {worst_z:.3f}, p = {worst_p:.4g} < {level:.4g}"
            if significant else
            f"not yet significant: best {best!r} ({rate:.2%}) has z = {worst_z:.3f}, p = {worst_p:.4g} "
            f">= {level:.4g} (alpha {alpha}"
            + (f" / {len(arms) - 1} comparisons" if len(arms) > 2 else "") + ")"
        )
        decision = Decision(
            campaign_id=campaign_id, winner=best if significant else None, test=test, significant=significant,
            statistic=worst_z, p_value=worst_p, threshold=level, comparisons=tuple(comparisons),
            reason=reason, at=now,
        )
    else:
        probs = prob_best(arms, seed=seed)
        best = max(probs, key=lambda v: (probs[v], v))
        significant = probs[best] >= threshold
        reason = (
            f"{best!r} wins: P(best) = {probs[best]:.3f} >= {threshold}" if significant else
            f"not yet significant: best {best!r} has P(best) = {probs[best]:.3f} < {threshold}"
        )
        decision = Decision(
            campaign_id=campaign_id, winner=best if significant else None, test=test, significant=significant,
            probability=probs[best], threshold=threshold,
            comparisons=tuple({"variant": v, "p_best": p} for v, p in probs.items()), reason=reason, at=now,
        )
    return decision
