"""PairNeighbours: each background face gets foreground faces from its landmark neighbours.

Only light records (keys, group codes, landmark vectors) take part in the search; the
pixels meet again later, in one shuffle keyed by foreground (`pipelines.samples`).
"""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from landmarks.neighbours import CandidatePool, choose_neighbour, k_nearest, normalize_landmarks
from pipelines.extract import FAILURES, dropped
from pipelines.records import Face
from pipelines.worker import prepare_worker_process
from shards.keys import key_rng, sample_key, stable_hash


@dataclass(frozen=True)
class Candidate:
    """What the neighbour search needs of a face, without its pixels.

    video, identity, split: int64 group codes (stable hashes). vector: (136,) float32
    normalised landmarks. path, frame and split_name name the face in a failure row.
    """

    key: str
    video: int
    identity: int
    split: int
    vector: np.ndarray
    path: str
    frame: int
    split_name: str


@dataclass(frozen=True)
class Pairing:
    """One blended sample to make: sample `key` pastes face `foreground` into face
    `background`. neighbour_rank: rank of the foreground among the background's k nearest
    (0 = nearest); neighbours: how many eligible neighbours there were."""

    key: str
    background: str
    foreground: str
    neighbour_rank: int
    neighbours: int


def blends_per_face(face_key: str, fakes_per_real: float, seed: int) -> int:
    """How many blended samples use this face as background: floor(r), plus one with
    probability frac(r), decided per face key."""
    whole = int(fakes_per_real)
    extra = key_rng(seed, "blend-count", face_key).random() < fakes_per_real - whole
    return whole + int(extra)


def candidate(face: Face) -> Candidate:
    """The face's entry in the neighbour search."""
    source = face.source
    return Candidate(face.key, stable_hash("video", source.dataset, source.video),
                     stable_hash("identity", source.dataset, source.identity), stable_hash("split", source.split),
                     normalize_landmarks(face.landmarks), source.path, face.frame, source.split)


def _codes(candidates: list[Candidate], field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in candidates], np.int64).reshape(-1)


def _vectors(candidates: list[Candidate]) -> np.ndarray:
    """(N, 136) float32: 68 normalised (x, y) points a face (N may be 0)."""
    return np.array([c.vector for c in candidates], np.float32).reshape(len(candidates), 136)


def _to_pool(candidates: list[Candidate]) -> CandidatePool:
    candidates = sorted(candidates, key=lambda c: c.key)
    return CandidatePool(keys=np.array([c.key for c in candidates], dtype=object),
                         videos=_codes(candidates, "video"), identities=_codes(candidates, "identity"),
                         splits=_codes(candidates, "split"), vectors=_vectors(candidates))


class _MatchFn(beam.DoFn):
    def __init__(self, k: int, seed: int, fail_fast: bool):
        self._k, self._seed, self._fail_fast = k, seed, fail_fast

    def setup(self):
        prepare_worker_process()

    def process(self, batch: list[tuple[Candidate, int]], pool: CandidatePool):
        queries = [query for query, _ in batch]
        indices, _ = k_nearest(_vectors(queries), _codes(queries, "video"), _codes(queries, "identity"),
                               _codes(queries, "split"), pool, self._k)
        for (query, variant), row in zip(batch, indices, strict=True):
            key = sample_key(query.key, f"bi{variant}")
            chosen = choose_neighbour(row, key_rng(self._seed, "neighbour", key))
            if chosen is None:
                yield dropped(query.path, "pair", "no_neighbour", query.frame,
                              f"{key}: no face of another video and identity of split "
                              f"{query.split_name} in the candidate pool", self._fail_fast)
                continue
            rank = int(np.flatnonzero(row == chosen)[0])
            yield Pairing(key, query.key, str(pool.keys[chosen]), rank, int((row >= 0).sum()))


class PairNeighbours(beam.PTransform):
    """Face -> Pairing (main) and failure rows (tag FAILURES).

    The candidate pool is `pool_size` faces drawn by a seeded hash of their keys (the same
    pool whatever the worker order); each background face takes one of its `k` nearest
    pool faces of its own split at random, excluding its own video and identity.
    """

    def __init__(self, k: int, pool_size: int, fakes_per_real: float, seed: int, fail_fast: bool = False):
        super().__init__()
        self._k, self._pool_size = k, pool_size
        self._fakes_per_real, self._seed, self._fail_fast = fakes_per_real, seed, fail_fast

    def expand(self, faces):
        seed, fakes_per_real = self._seed, self._fakes_per_real
        candidates = faces | "Candidates" >> beam.Map(candidate)
        pool = (candidates
                | "SamplePool" >> beam.combiners.Top.Of(
                    self._pool_size, key=lambda c: stable_hash(seed, "pool", c.key), reverse=True)
                | "BuildPool" >> beam.Map(_to_pool))
        matched = (candidates
                   | "Queries" >> beam.FlatMap(
                       lambda c: [(c, v) for v in range(blends_per_face(c.key, fakes_per_real, seed))])
                   | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
                   | "Match" >> beam.ParDo(_MatchFn(self._k, seed, self._fail_fast), pool=beam.pvalue.AsSingleton(pool))
                   .with_outputs(FAILURES, main="pairings"))
        return {"pairings": matched.pairings, FAILURES: matched[FAILURES]}
