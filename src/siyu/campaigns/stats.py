"""Statistics for A/B decisions: intervals, the two-proportion z-test and a
Bayesian posterior (Beta-Binomial), with the numbers shown.

The z-test (pooled standard error)::

    p  = (x1 + x2) / (n1 + n2)
    se = sqrt(p (1 - p) (1/n1 + 1/n2))
    z  = (x1/n1 - x2/n2) / se,   two-sided p-value = erfc(|z| / sqrt 2)

With more than two variants the best one is compared with each other one
and the significance level is divided by the number of comparisons
(Bonferroni), so picking "the best of many" does not inflate false wins.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

__all__ = [
    "normal_interval",
    "prob_best",
    "two_proportion_z",
    "wilson_interval",
]

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); ``(0, 0)`` for no trials."""
    if trials <= 0:
        return (0.0, 0.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def normal_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The normal-approximation (Wald) interval, clipped to [0, 1]."""
    if trials <= 0:
        return (0.0, 0.0)
    p = successes / trials
    half = z * math.sqrt(p * (1 - p) / trials)
    return (max(0.0, p - half), min(1.0, p + half))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """``(z, two-sided p-value)`` of the pooled two-proportion z-test of arm 1 vs arm 2."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both arms need at least one trial")
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = x1 / n1 - x2 / n2
    if se == 0:
        return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    z = diff / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def prob_best(
    arms: Mapping[str, tuple[int, int]], *, draws: int = 20_000, seed: int = 0, prior: tuple[float, float] = (1, 1)
) -> dict[str, float]:
    """Posterior probability that each arm has the highest rate, under
    independent ``Beta(prior + successes, prior + failures)`` posteriors,
    estimated with ``draws`` seeded Monte-Carlo samples (reproducible)."""
    rng = random.Random(seed)
    names: Sequence[str] = list(arms)
    wins = dict.fromkeys(names, 0)
    params = [(prior[0] + x, prior[1] + n - x) for x, n in (arms[k] for k in names)]
    for _ in range(draws):
        best, best_value = names[0], -1.0
        for name, (a, b) in zip(names, params, strict=True):
            value = rng.betavariate(a, b)
            if value > best_value:
                best, best_value = name, value
        wins[best] += 1
    return {name: wins[name] / draws for name in names}
