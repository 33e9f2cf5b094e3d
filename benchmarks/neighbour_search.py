"""Landmark neighbour search at scale: Q synthetic 136-d landmark vectors (32 frames a
video, 4 videos an identity) against a P-vector candidate pool, k nearest. Target
(issue 7): 1 M queries x 20 k pool, k = 100, within 5 minutes on 2 cores, bounded memory.

    python benchmarks/neighbour_search.py [--queries 1000000] [--pool 20000] [--k 100]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from landmarks.neighbours import CandidatePool, k_nearest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--block", type=int, default=2048)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    videos = np.arange(args.queries, dtype=np.int64) // 32
    identities = videos // 4
    splits = np.zeros(args.queries, np.int64)
    queries = rng.standard_normal((args.queries, 136), dtype=np.float32)
    chosen = np.sort(rng.choice(args.queries, args.pool, replace=False))
    pool = CandidatePool(np.array([f"k{i}" for i in chosen], dtype=object), videos[chosen], identities[chosen],
                         splits[chosen], queries[chosen])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    indices, _ = k_nearest(queries, videos, identities, splits, pool, args.k, args.block)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert not np.any(pool.identities[indices] == identities[:, None])
    print(f"{args.queries:,} queries x {args.pool:,} pool, k = {args.k}: {seconds:.1f} s "
          f"({args.queries / seconds:,.0f} queries/s)")
    print(f"peak RSS {peak:.0f} MB ({before:.0f} MB before the search; queries alone "
          f"{queries.nbytes / 2**20:.0f} MB, results {indices.nbytes / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
