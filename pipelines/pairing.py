"""PairNeighbours: each background face gets foreground faces from its landmark neighbours."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from landmarks.neighbours import CandidatePool, choose_neighbour, k_nearest, normalize_landmarks
from pipelines.extract import FAILURES, dropped
from pipelines.records import Face
from shards.keys import key_rng, sample_key, stable_hash


@dataclass(frozen=True)
class BlendJob:
    """One blended sample to make: `background` gets the face `foreground` pasted in.
    neighbour: rank of the foreground among the background's k nearest (0 = nearest) and
    how many eligible neighbours there were."""

    key: str
    background: Face
    foreground: Face
    neighbour_rank: int
    neighbours: int


def blends_per_face(face_key: str, fakes_per_real: float, seed: int) -> int:
    """How many blended samples use this face as background: floor(r), plus one with
    probability frac(r), decided per face key."""
    whole = int(fakes_per_real)
    extra = key_rng(seed, "blend-count", face_key).random() < fakes_per_real - whole
    return whole + int(extra)


def _pool_entry(face: Face) -> tuple:
    """(key, video code, identity code, split code, normalised landmarks) of a face."""
    source = face.source
    return (face.key, stable_hash("video", source.dataset, source.video),
            stable_hash("identity", source.dataset, source.identity), stable_hash("split", source.split),
            normalize_landmarks(face.landmarks))


def _codes(entries: list[tuple], column: int) -> np.ndarray:
    return np.array([e[column] for e in entries], np.int64).reshape(-1)


def _to_pool(entries: list[tuple]) -> CandidatePool:
    entries = sorted(entries, key=lambda e: e[0])
    return CandidatePool(
        keys=np.array([e[0] for e in entries], dtype=object), videos=_codes(entries, 1),
        identities=_codes(entries, 2), splits=_codes(entries, 3),
        vectors=np.array([e[4] for e in entries], np.float32).reshape(len(entries), 136))


class _MatchFn(beam.DoFn):
    def __init__(self, k: int, seed: int, fail_fast: bool):
        self._k, self._seed, self._fail_fast = k, seed, fail_fast

    def process(self, batch: list[tuple[Face, int]], pool: CandidatePool):
        entries = [_pool_entry(face) for face, _ in batch]
        indices, _ = k_nearest(np.stack([e[4] for e in entries]), _codes(entries, 1), _codes(entries, 2),
                               _codes(entries, 3), pool, self._k)
        for (face, variant), row in zip(batch, indices):
            key = sample_key(face.key, f"bi{variant}")
            rng = key_rng(self._seed, "neighbour", key)
            chosen = choose_neighbour(row, rng)
            if chosen is None:
                yield dropped(face.source.path, "pair", "no_neighbour", face.frame,
                              f"{key}: no face of another video and identity of split "
                              f"{face.source.split} in the candidate pool", self._fail_fast)
                continue
            rank = int(np.flatnonzero(row == chosen)[0])
            yield pool.keys[chosen], (key, face, rank, int((row >= 0).sum()))


class PairNeighbours(beam.PTransform):
    """Face -> BlendJob (main) and failure rows (tag FAILURES).

    The candidate pool is `pool_size` faces drawn by a seeded hash of their keys (the same
    pool whatever the worker order); each background face takes one of its `k` nearest
    pool faces of its own split at random, excluding its own video and identity.
    """

    def __init__(self, k: int, pool_size: int, fakes_per_real: float, seed: int, fail_fast: bool = False):
        super().__init__()
        self._k, self._pool_size = k, pool_size
        self._fakes_per_real, self._seed, self._fail_fast = fakes_per_real, seed, fail_fast

    def expand(self, faces):
        seed = self._seed
        pool = (faces
                | "PoolEntries" >> beam.Map(_pool_entry)
                | "SamplePool" >> beam.combiners.Top.Of(
                    self._pool_size, key=lambda e: stable_hash(seed, "pool", e[0]), reverse=True)
                | "BuildPool" >> beam.Map(_to_pool))
        matched = (faces
                   | "Jobs" >> beam.FlatMap(lambda f: [(f, v) for v in range(
                       blends_per_face(f.key, self._fakes_per_real, seed))])
                   | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
                   | "Match" >> beam.ParDo(_MatchFn(self._k, seed, self._fail_fast), pool=beam.pvalue.AsSingleton(pool))
                   .with_outputs(FAILURES, main="matched"))
        crops = faces | "ByKey" >> beam.Map(lambda f: (f.key, f))
        jobs = ({"foreground": crops, "jobs": matched.matched}
                | "JoinForeground" >> beam.CoGroupByKey()
                | "MakeJobs" >> beam.FlatMap(_jobs_with_foreground))
        return {"jobs": jobs, FAILURES: matched[FAILURES]}


def _jobs_with_foreground(joined):
    _, groups = joined
    foregrounds = list(groups["foreground"])
    for key, background, rank, neighbours in groups["jobs"]:
        yield BlendJob(key, background, foregrounds[0], rank, neighbours)
