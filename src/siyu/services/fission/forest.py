"""Whole-forest counts in one level-by-level pass: every user's depth,
direct invitees, invitees within two levels, and total downline.

Walking each user's subtree (what a general graph library does) costs the
sum of all subtree sizes — about n × average depth. Here every user is
touched once per level instead: group users by depth, then push counts from
the deepest level up to the parents. With numpy installed (the ``fast``
extra) each level is one vectorised ``bincount``; without it the same pass
runs on plain Python lists.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["ForestCounts", "forest_counts", "forest_counts_by_id"]


@attrs.frozen(kw_only=True, eq=False)
class ForestCounts:
    """Per-node results, index-aligned with the ``parents`` passed in.

    ``depth[i]``: inviters above node ``i``; ``direct[i]``: invited directly;
    ``within2[i]``: invitees at depth 1 or 2 below; ``total[i]``: the whole
    downline. The sequences are numpy arrays when numpy did the work (no
    copies into lists for a million users), plain lists otherwise.
    """

    depth: Sequence[int]
    direct: Sequence[int]
    within2: Sequence[int]
    total: Sequence[int]
    #: Node ids (ascending) when built by :func:`forest_counts_by_id`, else empty.
    ids: Sequence[int] = ()

    def of(self, node_id: int) -> tuple[int, int, int]:
        """``(direct, within2, total)`` of one node id (from :func:`forest_counts_by_id`)."""
        at = bisect.bisect_left(self.ids, node_id)
        if at == len(self.ids) or self.ids[at] != node_id:
            return (0, 0, 0)
        return int(self.direct[at]), int(self.within2[at]), int(self.total[at])


def forest_counts(parents: Sequence[int], *, use_numpy: bool | None = None) -> ForestCounts:
    """Counts for a forest given as ``parents[i]`` = index of node ``i``'s
    parent, or ``-1`` for a root. The input must be a forest (no cycles).

    ``use_numpy``: ``None`` uses numpy when it is installed."""
    if _numpy_wanted(use_numpy):
        return _with_numpy(parents)
    return _pure(list(parents))


def forest_counts_by_id(
    ids: Sequence[int], parent_ids: Sequence[int], *, use_numpy: bool | None = None
) -> ForestCounts:
    """Like :func:`forest_counts`, for nodes named by id: ``ids`` ascending
    positive ints, ``parent_ids[i]`` the parent id of ``ids[i]`` or ``0`` for a root."""
    if _numpy_wanted(use_numpy):
        import numpy as np

        id_arr: Any = np.asarray(ids, dtype=np.int64)
        par: Any = np.asarray(parent_ids, dtype=np.int64)
        # User ids are dense integers, so a lookup table beats a binary search per node.
        lookup = np.full(int(id_arr[-1]) + 1 if len(id_arr) else 1, -1, dtype=np.int64)
        lookup[id_arr] = np.arange(len(id_arr), dtype=np.int64)
        return attrs.evolve(_with_numpy(lookup[par]), ids=ids)
    position = {node: i for i, node in enumerate(ids)}
    return attrs.evolve(_pure([position[p] if p else -1 for p in parent_ids]), ids=ids)


def _numpy_wanted(use_numpy: bool | None) -> bool:
    if use_numpy is not None:
        return use_numpy
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _pure(parents: list[int]) -> ForestCounts:
    n = len(parents)
    depth = [-1] * n
    for start in range(n):
        if depth[start] >= 0:
            continue
        chain = []
        node = start
        while node >= 0 and depth[node] < 0:
            chain.append(node)
            node = parents[node]
            if len(chain) > n:
                raise ValueError("parents contain a cycle")
        level = -1 if node < 0 else depth[node]
        for member in reversed(chain):
            level += 1
            depth[member] = level
    direct = [0] * n
    for p in parents:
        if p >= 0:
            direct[p] += 1
    within2 = direct[:]
    for child, p in enumerate(parents):
        if p >= 0:
            within2[p] += direct[child]
    total = [0] * n
    for node in sorted(range(n), key=depth.__getitem__, reverse=True):
        p = parents[node]
        if p >= 0:
            total[p] += total[node] + 1
    return ForestCounts(depth=depth, direct=direct, within2=within2, total=total)


def _with_numpy(parents: Any) -> ForestCounts:
    import numpy as np

    par: Any = np.asarray(parents, dtype=np.int64)
    n = len(par)
    # Depth: every non-root climbs one level per step; the climbers thin out as they reach
    # roots, so the work is the sum of depths in ever smaller arrays.
    depth: Any = np.zeros(n, dtype=np.int64)
    if n and int(par.max(initial=-1)) >= n:
        raise ValueError("a parent index is out of range")
    climbers = np.flatnonzero(par >= 0)
    at = par[climbers]
    steps = 0
    while len(climbers):
        depth[climbers] += 1
        at = par[at]
        keep = at >= 0
        climbers, at = climbers[keep], at[keep]
        steps += 1
        if steps > n:
            raise ValueError("parents contain a cycle")
    children = np.flatnonzero(par >= 0)
    their_parents = par[children]
    direct: Any = np.bincount(their_parents, minlength=n)
    within2: Any = direct + np.bincount(their_parents, weights=direct[children], minlength=n).astype(np.int64)
    # Total: push counts up one level at a time, deepest level first.
    total: Any = np.zeros(n, dtype=np.int64)
    # Depths are small, so a stable sort on 16-bit keys is numpy's O(n) radix sort.
    order = children[np.argsort((-depth[children]).astype(np.int16), kind="stable")]
    level_of = depth[order]
    bounds = np.flatnonzero(np.diff(level_of)) + 1
    for run in np.split(order, bounds):
        np.add.at(total, par[run], total[run] + 1)
    return ForestCounts(depth=depth, direct=direct, within2=within2, total=total)
