"""WriteFaceTables: after every unit is extracted, the face shards' tables.

One worker streams the unit records in unit order into `faces.parquet` and
`failures.parquet`, picks the seeded candidate pool, and writes `neighbours.parquet`: each
face's k nearest pool faces of its split (other video, other identity) as row numbers of
`faces.parquet`. Memory holds the pool and one block of queries, never the whole table.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from landmarks.neighbours import CandidatePool, k_nearest, normalize_landmarks
from pipelines.extract import UnitSummary, read_unit_record
from pipelines.collect import Gather
from pipelines.write import write_table
from shards.keys import stable_hash

QUERY_BLOCK = 2048
"""Faces searched per batch."""


def group_codes(row: dict) -> tuple[int, int, int]:
    """(video, identity, split) of a faces row as int64 codes for the neighbour search."""
    return (stable_hash("video", row["dataset"], row["video"]), stable_hash("identity", row["dataset"], row["identity"]),
            stable_hash("split", row["split"]))


def _vector(row: dict) -> np.ndarray:
    return normalize_landmarks(np.asarray(row["landmarks"], np.float32).reshape(68, 2))


class _PoolPicker:
    """The `size` faces with the smallest seeded key hashes, offered one row at a time."""

    def __init__(self, seed: int, size: int):
        self.seed, self.size, self.offered = seed, size, 0
        self._chosen: list = []

    def offer(self, row: dict) -> None:
        entry = (-stable_hash(self.seed, "pool", row["key"]), row["key"], self.offered, group_codes(row), _vector(row))
        self.offered += 1
        if len(self._chosen) < self.size:
            heapq.heappush(self._chosen, entry)
        elif entry[:2] > self._chosen[0][:2]:
            heapq.heapreplace(self._chosen, entry)

    def pool(self) -> tuple[CandidatePool, np.ndarray]:
        """The pool sorted by key, and its faces' row numbers."""
        chosen = sorted(self._chosen, key=lambda e: e[1])
        codes = np.array([e[3] for e in chosen], np.int64).reshape(-1, 3)
        pool = CandidatePool(keys=np.array([e[1] for e in chosen], dtype=object), videos=codes[:, 0],
                             identities=codes[:, 1], splits=codes[:, 2],
                             vectors=np.array([e[4] for e in chosen], np.float32).reshape(len(chosen), 136))
        return pool, np.array([e[2] for e in chosen], np.int32)


class FaceTables:
    """The tables of a face-shard folder, written from its unit records."""

    def __init__(self, directory: str, skipped: list[dict], seed: int, k: int, pool_size: int):
        self.directory, self.skipped, self.seed, self.k, self.pool_size = directory, skipped, seed, k, pool_size

    def rows(self, units: list[int]) -> Iterator[dict]:
        """faces.parquet rows in shard order."""
        for index in units:
            yield from read_unit_record(self.directory, index)["faces"]

    def write(self, units: list[int]) -> None:
        """Two passes over the unit records: faces and failures written and the pool picked
        in the first, the neighbours searched in the second."""
        failures, pool = list(self.skipped), _PoolPicker(self.seed, self.pool_size)

        def rows() -> Iterator[dict]:
            for index in units:
                record = read_unit_record(self.directory, index)
                failures.extend(record["failures"])
                for row in record["faces"]:
                    pool.offer(row)
                    yield row
        write_table(self.directory, "faces", self._batches(rows()))
        write_table(self.directory, "failures", [failures])
        candidates, pool_rows = pool.pool()
        write_table(self.directory, "neighbours", self._neighbours(units, candidates, pool_rows))

    @staticmethod
    def _batches(rows: Iterator[dict]) -> Iterator[list[dict]]:
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == QUERY_BLOCK:
                yield batch
                batch = []
        yield batch

    def _neighbours(self, units: list[int], pool: CandidatePool, pool_rows: np.ndarray) -> Iterator[list[dict]]:
        for block in self._batches(self.rows(units)):
            if not block:
                yield []
                continue
            codes = np.array([group_codes(r) for r in block], np.int64).reshape(-1, 3)
            vectors = np.array([_vector(r) for r in block], np.float32)
            indices, distances = k_nearest(vectors, codes[:, 0], codes[:, 1], codes[:, 2], pool, self.k)
            yield [{"key": row["key"], "neighbours": pool_rows[found[found >= 0]].tolist(),
                    "distances": near[found >= 0].tolist()}
                   for row, found, near in zip(block, indices, distances, strict=True)]


class _WriteTablesFn(beam.DoFn):
    def __init__(self, tables: FaceTables):
        self._tables = tables

    def process(self, summaries: list[UnitSummary]):
        from pipelines.worker import prepare_worker_process
        prepare_worker_process()
        units = sorted(s.index for s in summaries)
        self._tables.write(units)
        yield len(units)


class WriteFaceTables(beam.PTransform):
    """UnitSummary (all of them) -> faces, failures and neighbours tables in `directory`
    (reader-skipped inputs first in failures.parquet); outputs the number of units."""

    def __init__(self, directory: str, skipped: list[dict], seed: int, k: int, pool_size: int):
        super().__init__()
        self._tables = FaceTables(directory, skipped, seed, k, pool_size)

    def expand(self, summaries):
        return (summaries
                | "AllUnits" >> Gather()
                | "WriteTables" >> beam.ParDo(_WriteTablesFn(self._tables)))
