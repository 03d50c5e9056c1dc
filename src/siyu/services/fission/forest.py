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


@attrs.frozen(kw_only=True)
class ForestCounts:
    """Per-node results, index-aligned with the ``parents`` passed in.

    ``depth[i]``: inviters above node ``i``; ``direct[i]``: invited directly;
    ``within2[i]``: invitees at depth 1 or 2 below; ``total[i]``: the whole
    downline.
    """

    depth: list[int]
    direct: list[int]
    within2: list[int]
    total: list[int]
    #: Node ids (ascending) when built by :func:`forest_counts_by_id`, else empty.
    ids: list[int] = attrs.field(factory=list)

    def of(self, node_id: int) -> tuple[int, int, int]:
        """``(direct, within2, total)`` of one node id (from :func:`forest_counts_by_id`)."""
        at = bisect.bisect_left(self.ids, node_id)
        if at == len(self.ids) or self.ids[at] != node_id:
            return (0, 0, 0)
        return self.direct[at], self.within2[at], self.total[at]


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
    """Like :func:`forest_counts`, for nodes named by id: ``ids`` ascending,
    ``parent_ids[i]`` the parent id of ``ids[i]`` or ``0`` for a root."""
    if _numpy_wanted(use_numpy):
        import numpy as np

        id_arr: Any = np.asarray(ids, dtype=np.int64)
        par: Any = np.asarray(parent_ids, dtype=np.int64)
        index = np.searchsorted(id_arr, par)
        index[par == 0] = -1
        counts = _with_numpy(index)
    else:
        position = {node: i for i, node in enumerate(ids)}
        counts = _pure([position[p] if p else -1 for p in parent_ids])
    return attrs.evolve(counts, ids=list(ids))


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
    by_depth = sorted(range(n), key=depth.__getitem__, reverse=True)
    for node in by_depth:
        p = parents[node]
        if p >= 0:
            total[p] += total[node] + 1
    return ForestCounts(depth=depth, direct=direct, within2=within2, total=total)


def _with_numpy(parents: Sequence[int]) -> ForestCounts:
    import numpy as np

    par: Any = np.asarray(parents, dtype=np.int64)
    n = len(par)
    has = par >= 0
    # Depth by pointer chasing: one vectorised step per level of the deepest tree.
    depth: Any = np.zeros(n, dtype=np.int64)
    cursor = par.copy()
    while True:
        live = cursor >= 0
        if not live.any():
            break
        depth[live] += 1
        cursor[live] = par[cursor[live]]
        if depth.max() > n:
            raise ValueError("parents contain a cycle")
    children, their_parents = np.nonzero(has)[0], par[has]
    direct = np.bincount(their_parents, minlength=n).astype(np.int64)
    within2 = direct + np.bincount(their_parents, weights=direct[children], minlength=n).astype(np.int64)
    total: Any = np.zeros(n, dtype=np.int64)
    order = np.argsort(-depth, kind="stable")
    sorted_depth = depth[order]
    # Push from the deepest level up; each level's nodes are a contiguous run of `order`.
    bounds = np.flatnonzero(np.diff(sorted_depth)) + 1
    for run in np.split(order, bounds):
        if len(run) == 0 or depth[run[0]] == 0:
            continue
        total += np.bincount(par[run], weights=total[run] + 1, minlength=n).astype(np.int64)
    return ForestCounts(depth=depth.tolist(), direct=direct.tolist(), within2=within2.tolist(),
                        total=total.tolist())
