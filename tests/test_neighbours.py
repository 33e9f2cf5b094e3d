"""Landmark nearest-neighbour search against a brute-force reference."""
from __future__ import annotations

import numpy as np

from landmarks.neighbours import GRID, CandidatePool, choose_neighbour, k_nearest, normalize_landmarks


def _pool(rng, n, dim=136, videos=12, identities=6, splits=2):
    video = rng.integers(0, videos, n)
    return CandidatePool(keys=np.array([f"k{i}" for i in range(n)], dtype=object),
                         videos=video.astype(np.int64), identities=(video % identities).astype(np.int64),
                         splits=(video % splits).astype(np.int64),
                         vectors=rng.normal(size=(n, dim)).astype(np.float32))


def _brute_force(queries, q_videos, q_ids, q_splits, pool, k):
    rows = []
    for q, v, i, s in zip(queries, q_videos, q_ids, q_splits):
        eligible = [j for j in range(len(pool))
                    if pool.videos[j] != v and pool.identities[j] != i and pool.splits[j] == s]
        grid = lambda v: np.round(np.asarray(v, np.float64) / GRID)   # distances on the landmark grid
        d = [(float(((grid(q) - grid(pool.vectors[j])) ** 2).sum()), j) for j in eligible]
        rows.append([j for _, j in sorted(d)[:k]])
    return rows


def test_k_nearest_matches_brute_force_and_excludes_own_video_and_identity():
    rng = np.random.default_rng(0)
    pool = _pool(rng, 300)
    queries = rng.normal(size=(40, 136)).astype(np.float32)
    q_videos = rng.integers(0, 12, 40).astype(np.int64)
    q_ids, q_splits = q_videos % 6, rng.integers(0, 2, 40).astype(np.int64)
    indices, distances = k_nearest(queries, q_videos, q_ids, q_splits, pool, k=10, block=7)
    assert indices.tolist() == _brute_force(queries, q_videos, q_ids, q_splits, pool, 10)
    assert np.all(np.diff(distances, axis=1) >= 0)
    assert not np.any(pool.videos[indices] == q_videos[:, None])
    assert not np.any(pool.identities[indices] == q_ids[:, None])
    assert np.all(pool.splits[indices] == q_splits[:, None])


def test_blocking_does_not_change_the_result():
    rng = np.random.default_rng(1)
    pool = _pool(rng, 500)
    queries = rng.normal(size=(64, 136)).astype(np.float32)
    videos, ids, splits = rng.integers(0, 12, 64), rng.integers(0, 6, 64), rng.integers(0, 2, 64)
    a, _ = k_nearest(queries, videos, ids, splits, pool, k=25, block=64)
    b, _ = k_nearest(queries, videos, ids, splits, pool, k=25, block=5)
    np.testing.assert_array_equal(a, b)


def test_fewer_eligible_candidates_than_k_are_padded():
    rng = np.random.default_rng(2)
    pool = _pool(rng, 20, videos=4, identities=4, splits=1)
    eligible = int(((pool.videos != 0) & (pool.identities != 0)).sum())
    indices, distances = k_nearest(rng.normal(size=(1, 136)).astype(np.float32),
                                   np.array([0]), np.array([0]), np.array([0]), pool, k=100)
    assert (indices[0] >= 0).sum() == eligible
    assert np.all(indices[0, eligible:] == -1) and np.all(np.isinf(distances[0, eligible:]))
    assert choose_neighbour(np.full(5, -1), np.random.default_rng(0)) is None


def test_choice_is_uniform_over_the_k_and_seeded():
    row = np.arange(10)
    picks = [choose_neighbour(row, np.random.default_rng(s)) for s in range(2000)]
    counts = np.bincount(picks, minlength=10)
    assert counts.min() > 150 and counts.max() < 250
    assert choose_neighbour(row, np.random.default_rng(7)) == choose_neighbour(row, np.random.default_rng(7))


def test_normalized_landmarks_ignore_translation_and_scale():
    shape = np.random.default_rng(3).uniform(0, 100, (68, 2))
    a = normalize_landmarks(shape)
    b = normalize_landmarks(shape * 2.5 + np.array([40.0, -7.0]))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (136,)
    assert normalize_landmarks(np.stack([shape, shape])).shape == (2, 136)


def test_result_does_not_depend_on_thread_count():
    import torch
    rng = np.random.default_rng(4)
    pool = _pool(rng, 2000)
    queries = rng.normal(size=(300, 136)).astype(np.float32)
    queries[:50] = pool.vectors[:50]                      # exact duplicates: ties everywhere
    args = (queries, rng.integers(0, 12, 300), rng.integers(0, 6, 300), rng.integers(0, 2, 300), pool, 40)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = k_nearest(*args)
        torch.set_num_threads(2)
        two, _ = k_nearest(*args)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
