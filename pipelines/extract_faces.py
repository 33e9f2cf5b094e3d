"""`extract_faces`: videos and images -> face shards, faces / failures / neighbours tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.config import CropConfig, WorkerConfig
from pipelines.extract import UNIT_RECORDS, ExtractFaces, unit_record_name
from pipelines.face_tables import WriteFaceTables
from pipelines.lanes import deal
from pipelines.units import Unit
from shards.layout import shard_name

FACES_SUBFOLDER = "faces"
"""Where `build_bi_shards --input` keeps the face shards it extracts, inside its output."""


@dataclass(frozen=True)
class FacesConfig:
    """directory: face-shard folder or URL. seed: seed of the candidate pool. neighbours:
    k of the k-NN. pool_size: candidate pool size. images_per_unit: images per face shard.
    resume: keep the face shards of an interrupted run."""

    directory: str
    crops: CropConfig = CropConfig()
    workers: WorkerConfig = WorkerConfig()
    seed: int = 0
    neighbours: int = 100
    pool_size: int = 20_000
    images_per_unit: int = 256
    resume: bool = False


def face_outputs(directory: str, units: list[Unit]) -> list[str]:
    """Every file an extraction of `units` into `directory` writes: a face shard and a unit
    record per unit, and the three tables."""
    return [*(FileSystems.join(directory, shard_name(u.index)) for u in units),
            *(FileSystems.join(directory, UNIT_RECORDS, unit_record_name(u.index)) for u in units),
            *(FileSystems.join(directory, f"{name}.parquet") for name in ("faces", "failures", "neighbours"))]


def extract_faces(pipeline: beam.Pipeline, units: list[Unit], skipped: list[dict], config: FacesConfig):
    """Add face extraction to `pipeline`: units -> face shards -> tables. `skipped`:
    failure rows of inputs the reader left out. Returns its last PCollection (one
    element once every table is written)."""
    lanes = deal(units, config.workers.lanes, config.workers.claims, cost=lambda unit: unit.cost)
    return (pipeline
            | "Units" >> beam.Create(lanes)
            | "ExtractFaces" >> ExtractFaces(config.directory, config.crops, config.workers, config.resume,
                                             sum(len(u.sources) for u in units))
            | "WriteFaceTables" >> WriteFaceTables(config.directory, skipped, config.seed, config.neighbours,
                                                   config.pool_size))
