"""`build_bi_shards`: real face videos and images -> Face X-ray BI shards + Parquet tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from blending.bi import BlendParams
from landmarks.detect import DetectorConfig
from pipelines.extract import FAILURES, ExtractFaces
from pipelines.pairing import PairNeighbours
from pipelines.records import Source
from pipelines.samples import SynthesizeSamples
from pipelines.write import WriteShards, WriteTables


@dataclass(frozen=True)
class BiShardsConfig:
    """Everything `build_bi_shards` needs besides its sources (see the CLI for meanings)."""

    output: str
    frames_per_video: int = 32
    size: int = 256
    margin: float = 1.3
    detector: DetectorConfig = DetectorConfig()
    neighbours: int = 100
    pool_size: int = 20_000
    fakes_per_real: float = 1.0
    blend: BlendParams = BlendParams()
    samples_per_shard: int = 1000
    seed: int = 0


def build_bi_shards(pipeline: beam.Pipeline, sources: list[Source], config: BiShardsConfig) -> None:
    """Add the BI pipeline to `pipeline`: sources -> faces -> pairs -> samples -> shards."""
    extracted = (pipeline
                 | "ReadSources" >> beam.Create(sources)
                 | "ExtractFaces" >> ExtractFaces(config.detector, config.frames_per_video,
                                                  config.size, config.margin))
    faces = extracted.faces
    paired = faces | "PairNeighbours" >> PairNeighbours(
        config.neighbours, config.pool_size, config.fakes_per_real, config.seed)
    samples = (faces, paired["jobs"]) | "SynthesizeBlends" >> SynthesizeSamples(config.blend, config.seed)
    index = samples | "WriteShards" >> WriteShards(config.output, config.samples_per_shard, config.seed)
    failures = (extracted[FAILURES], paired[FAILURES]) | "AllFailures" >> beam.Flatten()
    {"faces": faces | "FaceRows" >> beam.Map(lambda f: f.table_row()),
     "index": index,
     "failures": failures} | "WriteTables" >> WriteTables(config.output)
