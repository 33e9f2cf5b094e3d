"""Settings shared by the pipelines: how faces are cropped, how shards are written and how
workers run."""
from __future__ import annotations

from dataclasses import dataclass

from landmarks.detect import DetectorConfig
from pipelines.failures import FailFast


@dataclass(frozen=True)
class CropConfig:
    """frames_per_video: evenly spaced frames used per video. size, margin: the recipe's
    crop side (px) and crop side / face-box side. face_size, face_margin: the same for the
    stored crops of face shards, from which recipe crops are cut (so at least as generous).
    face_compression: of the stored crops' PNG (`shards.faces.FACE_COMPRESSION`).
    detector: face acceptance thresholds."""

    frames_per_video: int = 32
    size: int = 256
    margin: float = 1.3
    face_size: int = 384
    face_margin: float = 2.0
    face_compression: str = "none"
    detector: DetectorConfig = DetectorConfig()


@dataclass(frozen=True)
class OutputConfig:
    """directory: output folder or URL. samples_per_shard: samples per tar (last may be
    short). seed: seed of every random choice, shard order included. resume: keep shards
    an interrupted run completed (they are final: written whole, then renamed) and write
    the rest."""

    directory: str
    samples_per_shard: int = 1000
    seed: int = 0
    resume: bool = False


@dataclass(frozen=True)
class WorkerConfig:
    """How the run's workers behave, wherever they run (everything a worker needs from the
    launcher travels here, not in its environment).

    fail_fast: with --fail-fast, the first dropped input or face stops the run (see
    `pipelines.failures.FailFast`); None records it and goes on. workers: worker processes
    sharing the run, e.g. --direct_num_workers (progress ETA). lanes: local worker processes
    that share the units and output shards by claiming them (`pipelines.lanes`), 0 or 1 for
    one item per element. claims: the directory of their claim files, local to the machine.
    input_timeout: seconds one input (or an original with its fakes) may take to decode,
    0 for no limit. verbose: native libraries' log lines are shown (`beam -v`)."""

    fail_fast: FailFast | None = None
    workers: int = 1
    lanes: int = 0
    claims: str = ""
    input_timeout: float = 0.0
    verbose: bool = False
