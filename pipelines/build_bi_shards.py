"""`build_bi_shards`: face shards and their BI plan (`pipelines.samples.plan_bi_shards`) ->
Face X-ray BI shards + index and failures tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from blending.mix import FakeParams, RecipeMix
from pipelines.config import OutputConfig, WorkerConfig
from pipelines.lanes import deal
from pipelines.samples import BiPlan, WriteBiShards
from pipelines.write import WriteTables
from shards.layout import shard_name


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


def bi_outputs(directory: str, plan: BiPlan) -> list[str]:
    """Every file a BI run of `plan` into `directory` writes: a shard per task, two tables."""
    return [*(FileSystems.join(directory, shard_name(task.index)) for task in plan.tasks),
            *(FileSystems.join(directory, f"{name}.parquet") for name in ("index", "failures"))]


def build_bi_shards(pipeline: beam.Pipeline, config: BiShardsConfig, plan: BiPlan):
    """Add the BI stage to `pipeline`: `plan`'s shard tasks -> shards -> tables. Returns its
    last PCollection (one element once every shard and table is written)."""
    out, workers = config.output, config.workers
    index = (pipeline
             | "ShardTasks" >> beam.Create(deal(plan.tasks, workers.lanes, workers.claims))
             | "WriteBiShards" >> WriteBiShards(config.faces, out.directory, config.size, config.margin, config.fakes,
                                                out.seed, out.resume))
    failures = pipeline | "PlanFailures" >> beam.Create([(0, list(plan.failures))])
    return {"index": index, "failures": failures} | "WriteTables" >> WriteTables(out.directory)
