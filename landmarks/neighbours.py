"""Nearest-neighbour search over normalised landmarks (Face X-ray Sec. 3.2, stage 1).

For each background face: the k nearest candidates by Euclidean distance of normalised
landmarks, never from the same video or the same identity, always from the same split.
Distances come from blocked matrix products (|q|^2 + |p|^2 - 2 q.p) and a top-k, so
memory is bounded by `block x pool` floats whatever the number of queries.

Determinism: vectors are rounded to a grid of GRID (1/1024 of the normalised scale, ~0.1 px
on a 256 px face), so squared distances are integers that float64 holds exactly whatever
the order a BLAS sums them in (any thread count, any machine), and the selection key
distance * P + pool index makes every candidate distinct: ties go to the lower index.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = 1.0 / 1024
"""Landmark vectors are compared on this grid (normalised units)."""


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


def _matching_pairs(query_codes: np.ndarray, pool_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): every (query i, pool j) with query_codes[i] == pool_codes[j], found by
    binary search in the sorted pool codes (no Q x P comparison)."""
    order = np.argsort(pool_codes, kind="stable")
    sorted_codes = pool_codes[order]
    starts = np.searchsorted(sorted_codes, query_codes, "left")
    counts = np.searchsorted(sorted_codes, query_codes, "right") - starts
    rows = np.repeat(np.arange(len(query_codes)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, order[np.repeat(starts, counts) + offsets]


def _grid(vectors: np.ndarray) -> np.ndarray:
    """Vectors rounded to integer multiples of GRID, as float64 integers."""
    return np.round(np.asarray(vectors, np.float64) / GRID)


def _k_nearest_in(rows, queries, query_videos, query_identities, vectors, videos, identities, k, block,
                  indices, distances) -> None:
    """Fill indices[rows] / distances[rows] with the k nearest of `vectors` (local indices)
    for the queries at `rows` (same split already), own video and identity excluded.
    Distances and the top-k selection run in torch (multi-threaded BLAS and top-k)."""
    import torch

    k_eff = min(k, len(vectors))
    if k_eff == 0:
        return
    pool = torch.from_numpy(_grid(vectors))
    pool_norms = (pool ** 2).sum(1)
    tie_break = torch.arange(len(vectors), dtype=torch.float64)
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        q = torch.from_numpy(_grid(queries[chunk]))
        d = torch.addmm(pool_norms[None, :], q, pool.T, alpha=-2.0).add_((q ** 2).sum(1, keepdim=True))
        for query_codes, pool_codes in ((query_videos[chunk], videos), (query_identities[chunk], identities)):
            pairs_rows, pairs_cols = _matching_pairs(query_codes, pool_codes)
            d[torch.from_numpy(pairs_rows), torch.from_numpy(pairs_cols)] = float("inf")
        keys = d.mul_(len(vectors)).add_(tie_break)          # exact: distances < 2^38, P < 2^15
        values, best = torch.topk(keys, k_eff, dim=1, largest=False, sorted=True)
        values, best = values.numpy(), best.numpy().copy()
        eligible = np.isfinite(values)
        best_d = np.full(values.shape, np.inf)
        best_d[eligible] = (values[eligible] // len(vectors)) * GRID ** 2
        best[~eligible] = -1
        indices[chunk, :k_eff] = best
        distances[chunk, :k_eff] = best_d


def k_nearest(queries: np.ndarray, query_videos: np.ndarray, query_identities: np.ndarray,
              query_splits: np.ndarray, pool: CandidatePool, k: int,
              block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest pool entries of each query among those of its split, excluding its
    own video and identity.

    queries: (Q, D) float32; query_videos, query_identities, query_splits: (Q,) int64 codes.
    Returns indices (Q, k) int64 into the pool, nearest first, and their squared distances
    (Q, k) float32 on the GRID; slots beyond the number of eligible candidates hold -1 and
    inf. Ties go to the lower pool index; the result depends neither on blocking nor on
    thread count. Memory beyond the inputs and results: one block x pool float64 matrix.
    """
    indices = np.full((len(queries), k), -1, np.int64)
    distances = np.full((len(queries), k), np.inf, np.float32)
    for split in np.unique(query_splits):
        rows, members = np.flatnonzero(query_splits == split), np.flatnonzero(pool.splits == split)
        if len(members) == 0:
            continue
        _k_nearest_in(rows, queries, query_videos, query_identities, pool.vectors[members], pool.videos[members],
                      pool.identities[members], k, block, indices, distances)
        found = indices[rows]           # indices into `members` -> indices into the pool
        indices[rows] = np.where(found >= 0, members[np.maximum(found, 0)], -1)
    return indices, distances


def choose_neighbour(row: np.ndarray, rng: np.random.Generator) -> int | None:
    """One eligible pool index chosen uniformly from a k-nearest row; None if none."""
    eligible = row[row >= 0]
    if len(eligible) == 0:
        return None
    return int(eligible[rng.integers(len(eligible))])
