"""`build_bi_shards`: real face videos and images -> Face X-ray BI shards + Parquet tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from blending.bi import BlendParams
from pipelines.config import CropConfig, OutputConfig
from pipelines.extract import FAILURES, ExtractFaces
from pipelines.pairing import PairNeighbours
from pipelines.records import Source
from pipelines.samples import SynthesizeSamples
from pipelines.write import WriteOutputs


@dataclass(frozen=True)
class BiShardsConfig:
    """neighbours: k of the k-NN; pool_size: candidate pool size; fakes_per_real: blended
    samples per real sample; blend: ranges of the blend's random choices."""

    output: OutputConfig
    crops: CropConfig = CropConfig()
    neighbours: int = 100
    pool_size: int = 20_000
    fakes_per_real: float = 1.0
    blend: BlendParams = BlendParams()


def build_bi_shards(pipeline: beam.Pipeline, sources: list[Source], skipped: list[dict],
                    config: BiShardsConfig) -> None:
    """Add the BI pipeline to `pipeline`: real sources -> faces -> pairs -> samples -> shards.
    `skipped`: failure rows of inputs the reader left out (written to failures.parquet)."""
    crops, seed = config.crops, config.output.seed
    extracted = (pipeline
                 | "ReadSources" >> beam.Create(sources)
                 | "ExtractFaces" >> ExtractFaces(crops.detector, crops.frames_per_video, crops.size, crops.margin,
                                                  config.output.fail_fast, len(sources), config.output.workers))
    faces = extracted.faces
    paired = faces | "PairNeighbours" >> PairNeighbours(config.neighbours, config.pool_size,
                                                        config.fakes_per_real, seed, config.output.fail_fast)
    samples = (faces, paired["jobs"]) | "SynthesizeBlends" >> SynthesizeSamples(config.blend, seed)
    skipped_rows = pipeline | "ReaderSkipped" >> beam.Create(skipped)
    (faces, samples, (skipped_rows, extracted[FAILURES], paired[FAILURES])) \
        | "WriteOutputs" >> WriteOutputs(config.output)
