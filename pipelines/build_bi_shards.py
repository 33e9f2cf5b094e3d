"""`build_bi_shards`: face shards (or videos and images, extracted first) -> Face X-ray BI
shards + index and failures tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from blending.mix import FakeParams, RecipeMix
from pipelines.config import OutputConfig, WorkerConfig
from pipelines.extract import FAILURES
from pipelines.samples import PlanBiShards, WriteBiShards
from pipelines.write import WriteTables


@dataclass(frozen=True)
class BiShardsConfig:
    """faces: the face-shard folder the samples are made from. size, margin: the recipe
    crop cut from the stored crops. fakes_per_real: fakes per real sample. mix: which
    generator makes each fake (BI blends, self-blends or both). fakes: the ranges of each
    generator's random choices."""

    output: OutputConfig
    faces: str
    size: int = 256
    margin: float = 1.3
    workers: WorkerConfig = WorkerConfig()
    fakes_per_real: float = 1.0
    mix: RecipeMix = RecipeMix.parse("bi")
    fakes: FakeParams = FakeParams()


def build_bi_shards(pipeline: beam.Pipeline, config: BiShardsConfig, after=None) -> None:
    """Add the BI stage to `pipeline`: plan -> shards -> tables. `after`: a PCollection
    that must be complete first (the face tables, when extraction runs in the same job)."""
    out = config.output
    start = pipeline if after is None else after | "FacesReady" >> beam.Map(lambda _: None)
    planned = start | "PlanBiShards" >> PlanBiShards(config.faces, out.samples_per_shard, config.fakes_per_real,
                                                     out.seed, config.workers, config.mix)
    index = planned.tasks | "WriteBiShards" >> WriteBiShards(config.faces, out.directory, config.size,
                                                             config.margin, config.fakes, out.seed, out.resume)
    {"index": index, "failures": planned[FAILURES]} | "WriteTables" >> WriteTables(out.directory)
