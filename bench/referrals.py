"""Referral forest: whole-forest downline counts and single-user downline reads.

A 1,000,000-user referral forest grown by preferential attachment (popular
inviters attract more invitees; depth capped at 20, ~1% of users are seeds)
is imported into siyu. Then:

1. every user's total downline size and depth-1 / depth-2 counts, computed by
   siyu's level-by-level pass (``ws.referrals.downline_counts``) and by
   networkx (``descendants`` + ``single_source_shortest_path_length`` per
   user) on a random sample of users, extrapolated to all users — networkx
   walks every subtree, which takes minutes for the whole forest;
2. one user's downline size, read from storage, for the root of the largest
   tree (goal: under 5 ms), plus the depth-1/2 invitee lists.

Answers are checked equal on the sample. Goal of issue 5: ≥ 100x networkx.

    .venv/bin/python bench/referrals.py [--db URL] [--scale 0.1] [--sample 2000]

Needs the ``bench`` extra (networkx, numpy).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu.services.fission.forest import forest_counts_by_id
from siyu.testing import FakeClock

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MAX_DEPTH = 20
SEED_SHARE = 0.01
GOAL_RATIO = 100.0
GOAL_MS = 5.0


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=int, default=2000, help="users networkx is timed on (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the forest (default 7)")


def grow_forest(n: int, seed: int) -> list[int]:
    """``parents[i]`` (0-based, -1 for a seed): each newcomer picks an inviter
    with probability proportional to 1 + the inviter's invitees so far."""
    rng = random.Random(seed)
    parents = [-1] * n
    depth = [0] * n
    # Every node once, plus once more per invitee: a uniform pick is preferential attachment.
    urn: list[int] = [0]
    for node in range(1, n):
        if rng.random() < SEED_SHARE:
            urn.append(node)
            continue
        for _ in range(8):
            inviter = urn[rng.randrange(len(urn))]
            if depth[inviter] < MAX_DEPTH:
                break
        else:
            urn.append(node)
            continue
        parents[node] = inviter
        depth[node] = depth[inviter] + 1
        urn.append(node)
        urn.append(inviter)
    return parents


def networkx_counts(edges: list[tuple[int, int]], sample: list[int]) -> tuple[dict[int, tuple[int, int, int]], Timing]:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from(edges)
    result: dict[int, tuple[int, int, int]] = {}
    with timed(len(sample)) as timing:
        for user in sample:
            if user not in graph:
                result[user] = (0, 0, 0)
                continue
            within2 = len(nx.single_source_shortest_path_length(graph, user, cutoff=2)) - 1
            result[user] = (graph.out_degree(user), within2, len(nx.descendants(graph, user)))
    return result, timing


def per_call_ms(call: object, repeat: int) -> float:
    assert callable(call)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    args = parse_args("siyu referral forest counts vs networkx", argv, extra_args)
    n = scaled(1_000_000, args.scale, minimum=50)
    sample_size = min(n, max(10, args.sample if args.scale >= 0.01 else 50))
    print(f"referrals bench: {n:,} users, preferential attachment, depth <= {MAX_DEPTH}, "
          f"networkx timed on {sample_size:,} users")
    parents = grow_forest(n, args.seed)

    with temp_dir() as tmp, siyu.connect(workspace_url(args, tmp), clock=FakeClock(START)) as ws:
        with timed(n) as setup_users:
            ids: list[int] = []
            for start in range(0, n, 50_000):
                ids.extend(ws.users.add_many([{} for _ in range(min(50_000, n - start))]))
        edges = [(ids[i], ids[p]) for i, p in enumerate(parents) if p >= 0]
        with timed(len(edges)) as setup_import:
            ws.referrals.import_bindings(edges)
        print(f"setup: {n:,} users in {setup_users.seconds:.1f}s, {len(edges):,} bindings imported in "
              f"{setup_import.seconds:.1f}s")

        # 1. whole forest: siyu's pass on the parent array, and the same with the read from storage
        with ws.read() as tx:
            users, parent_ids = tx.referrals.parents()
        import numpy as np

        # The pass itself starts from the parent array, as networkx starts from its built graph;
        # the "incl. storage read" line below times the whole ws.referrals.downline_counts() call.
        user_arr, parent_arr = np.asarray(users, dtype=np.int64), np.asarray(parent_ids, dtype=np.int64)
        forest_counts_by_id(user_arr, parent_arr)  # warm numpy up outside the timing
        with timed(n) as siyu_pass:
            counts = forest_counts_by_id(user_arr, parent_arr)
        with timed(n) as siyu_storage:
            stored_counts = ws.referrals.downline_counts()
        with timed(n) as siyu_pure:
            pure_counts = forest_counts_by_id(users, parent_ids, use_numpy=False)
        check_equal("numpy and pure-Python passes", list(pure_counts.total) == list(counts.total), True)
        check_equal("pass from storage", list(stored_counts.total) == list(counts.total), True)
        check_equal("sum of downlines = sum of depths", int(sum(counts.total)), int(sum(counts.depth)))
        check_equal("max depth <= cap", int(max(counts.depth)) <= MAX_DEPTH, True)

        rng = random.Random(args.seed + 1)
        sample = rng.sample(ids, sample_size)
        nx_result, nx_timing = networkx_counts([(inviter, invitee) for invitee, inviter in edges], sample)
        check_equal(f"counts of {sample_size:,} sampled users", {u: counts.of(u) for u in sample}, nx_result)
        nx_all = Timing(n, nx_timing.seconds * n / len(sample))

        # 2. one user's downline from storage: the root of the largest tree
        root = max(range(len(users)), key=lambda i: int(counts.total[i]) if parent_ids[i] == 0 else -1)
        root_id = users[root]
        check_equal("stored downline size of the largest tree", ws.referrals.downline_size(root_id),
                    int(counts.total[root]))
        size_ms = per_call_ms(lambda: ws.referrals.downline_size(root_id), 200)
        d1_ms = per_call_ms(lambda: ws.referrals.downline_size(root_id, depth=1), 20)
        d2_ms = per_call_ms(lambda: ws.referrals.invitees(root_id, depth=2), 10)
        check_equal("depth-2 invitees of the largest root", len(ws.referrals.invitees(root_id, depth=2)),
                    int(counts.within2[root]))
        with timed(1) as full_list:
            listed = ws.referrals.invitees(root_id, depth=None)
        check_equal("full downline list length", len(listed), int(counts.total[root]))

    ratio = siyu_pass.rate / nx_all.rate
    print()
    largest = int(counts.total[root]) + 1
    print(f"forest: {n:,} users, max depth {int(max(counts.depth))}, largest tree {largest:,} users")
    print(ratio_line("all downline counts", siyu_pass, nx_all,
                     f"siyu pass {siyu_pass.seconds:.3f}s, networkx ~{nx_all.seconds:,.1f}s extrapolated from "
                     f"{sample_size:,} users ({nx_timing.seconds:.2f}s); goal >= {GOAL_RATIO:.0f}x"))
    print(ratio_line("all downline counts incl. storage read", siyu_storage, nx_all,
                     f"ws.referrals.downline_counts() {siyu_storage.seconds:.3f}s"))
    print(ratio_line("all downline counts, pure Python (no numpy)", siyu_pure, nx_all,
                     f"{siyu_pure.seconds:.3f}s"))
    print(f"single downline size from storage (largest tree, {int(counts.total[root]):,} below): {size_ms:.3f} ms "
          f"median (goal < {GOAL_MS} ms) {'OK' if size_ms < GOAL_MS else 'MISSED'}")
    print(f"depth-1 count {d1_ms:.2f} ms, depth-2 invitee list ({int(counts.within2[root]):,}) {d2_ms:.2f} ms, "
          f"full downline list ({len(listed):,} ids) {full_list.seconds * 1000:.0f} ms")
    print(f"goal >= {GOAL_RATIO:.0f}x: {'OK' if ratio >= GOAL_RATIO else 'MISSED'} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
