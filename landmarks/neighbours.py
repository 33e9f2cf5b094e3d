"""Nearest-neighbour search over normalised landmarks (Face X-ray Sec. 3.2, stage 1).

For each background face: the k nearest candidates by Euclidean distance of normalised
landmarks, never from the same video or the same identity, always from the same split. Distances come from blocked
matrix products (|q|^2 + |p|^2 - 2 q.p) and `argpartition`, so memory is bounded by
`block x pool` floats whatever the number of queries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def normalize_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Translation- and scale-free landmark vectors.

    landmarks: (68, 2) or (N, 68, 2) float, px. Each shape is centred on its mean point and
    divided by its RMS distance to it. Returns (136,) or (N, 136) float32.
    """
    points = np.asarray(landmarks, np.float32)
    single = points.ndim == 2
    points = points[None] if single else points
    centred = points - points.mean(1, keepdims=True)
    scale = np.sqrt((centred ** 2).sum(2).mean(1))[:, None, None]
    vectors = (centred / np.maximum(scale, 1e-6)).reshape(len(points), -1)
    return vectors[0] if single else vectors


@dataclass(frozen=True)
class CandidatePool:
    """Faces a foreground may be drawn from.

    keys: (P,) face keys. videos, identities, splits: (P,) int64 group codes (any stable
    hash). vectors: (P, D) float32 normalised landmarks.
    """

    keys: np.ndarray
    videos: np.ndarray
    identities: np.ndarray
    splits: np.ndarray
    vectors: np.ndarray

    def __post_init__(self):
        n = len(self.keys)
        if not (len(self.videos) == len(self.identities) == len(self.splits) == len(self.vectors) == n):
            raise ValueError("pool arrays differ in length")

    def __len__(self) -> int:
        return len(self.keys)


def k_nearest(queries: np.ndarray, query_videos: np.ndarray, query_identities: np.ndarray,
              query_splits: np.ndarray, pool: CandidatePool, k: int,
              block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest pool entries of each query among those of its split, excluding its
    own video and identity.

    queries: (Q, D) float32; query_videos, query_identities, query_splits: (Q,) int64 codes.
    Returns indices (Q, k) int64 into the pool, nearest first, and their squared distances
    (Q, k) float32; slots beyond the number of eligible candidates hold -1 and inf.
    Ties are broken by pool index, so the result does not depend on blocking.
    """
    n_queries = len(queries)
    k_eff = min(k, len(pool))
    indices = np.full((n_queries, k), -1, np.int64)
    distances = np.full((n_queries, k), np.inf, np.float32)
    if k_eff == 0 or n_queries == 0:
        return indices, distances
    pool_vectors = pool.vectors.astype(np.float32)
    pool_norms = (pool_vectors ** 2).sum(1)
    for start in range(0, n_queries, block):
        stop = min(start + block, n_queries)
        q = queries[start:stop].astype(np.float32)
        d = (q ** 2).sum(1)[:, None] + pool_norms[None, :] - 2.0 * (q @ pool_vectors.T)
        np.maximum(d, 0.0, out=d)
        excluded = ((query_videos[start:stop, None] == pool.videos[None, :])
                    | (query_identities[start:stop, None] == pool.identities[None, :])
                    | (query_splits[start:stop, None] != pool.splits[None, :]))
        d[excluded] = np.inf
        if k_eff < len(pool):
            candidates = np.argpartition(d, k_eff - 1, axis=1)[:, :k_eff]
        else:
            candidates = np.broadcast_to(np.arange(len(pool)), d.shape)
        candidate_d = np.take_along_axis(d, candidates, 1)
        order = np.lexsort((candidates, candidate_d), axis=1)
        best = np.take_along_axis(candidates, order, 1)
        best_d = np.take_along_axis(candidate_d, order, 1)
        best[~np.isfinite(best_d)] = -1
        indices[start:stop, :k_eff] = best
        distances[start:stop, :k_eff] = best_d
    return indices, distances


def choose_neighbour(row: np.ndarray, rng: np.random.Generator) -> int | None:
    """One eligible pool index chosen uniformly from a k-nearest row; None if none."""
    eligible = row[row >= 0]
    if len(eligible) == 0:
        return None
    return int(eligible[rng.integers(len(eligible))])
