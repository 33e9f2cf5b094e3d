"""ExtractFaces: units of inputs -> face shards written by the worker that decoded them.

A worker handed a lane (a list of units) decodes each unit's frames, detects and aligns
its faces, writes the unit's face shard and its unit record (the faces' records and the
failure rows, no pixels) itself, atomically, and passes on only a `UnitSummary`. Nothing
with pixels crosses the runner.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from landmarks.align import align_detected
from landmarks.decoder import DecoderCrashed, DecoderProcess
from landmarks.detect import FaceDetector
from landmarks.frames import (DecodeError, DecodeLimits, DecodeTimeout, FileTooLarge, NotRegularFile, TooManyPixels,
                              media_kind, read_frames)
from pipelines.config import CropConfig, WorkerConfig
from pipelines.failures import (DECODER_CRASHED, FILE_TOO_LARGE, NOT_REGULAR_FILE, TIMEOUT, TOO_MANY_PIXELS,
                                TRUNCATED, UNDECODABLE, UNREADABLE, UNSUPPORTED_TYPE, FailFast, Reason, failure_row,
                                reason_of, stop_if_fail_fast)
from pipelines.progress import Progress
from pipelines.lanes import Lane, claim
from pipelines.records import Source
from pipelines.units import Unit
from pipelines.worker import prepare_worker_process, set_worker_verbosity, shared_decoder, shared_detector
from pipelines.write import AtomicFile, write_atomically
from shards.faces import FaceRecord, stored_face
from shards.keys import face_key
from shards.layout import shard_name
from shards.tar import write_tar

UNIT_RECORDS = "units"
"""Folder of the unit records, beside the face shards."""


def input_limits(timeout: float) -> DecodeLimits:
    """Decoding limits of one input starting now: the pixel and byte bounds, and a deadline
    `timeout` seconds away (`WorkerConfig.input_timeout`; 0: none)."""
    return DecodeLimits(deadline=time.monotonic() + timeout if timeout > 0 else None)


def count_dropped(path: str, stage: str | Reason, reason: str | None = None, frame: int = -1, detail: str = "",
                  fail_fast: FailFast | None = None) -> dict:
    """A failure row for `reason` (a `pipelines.failures.Reason`, or its stage and name),
    counted as Beam counter `dropped/<reason>`; with `fail_fast`, an InputFailure instead."""
    why = reason_of(stage, reason)
    Metrics.counter("dropped", why.name).inc()
    return stop_if_fail_fast(failure_row(path, why, frame, detail), fail_fast)


@contextmanager
def local_file(path: str, limits: DecodeLimits | None = None):
    """A local path for `path`: itself when local (not even looked at here: the decoding
    process opens it, within the input's time limit), else a temporary copy (OpenCV reads
    only local files)."""
    if "://" not in path:
        yield path
        return
    suffix = os.path.splitext(path)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy:
        with FileSystems.open(path) as remote:
            while chunk := remote.read(1 << 20):
                copy.write(chunk)
                if limits is not None:
                    limits.check_time("copying the remote file")
        copy.flush()
        yield copy.name


def _without_location(error: Exception) -> str:
    """An error's message without the file name or URL it carries (a row names its input
    by the path relative to the input root, and no row may say where the data sat)."""
    if isinstance(error, BeamIOError):   # its message lists each URL with its cause: the causes' types
        return ", ".join(sorted({type(e).__name__ for e in (error.exception_details or {}).values()})) \
            or "the file system gave no cause"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


INPUT_ERRORS = (DecodeError, OSError, cv2.error, MemoryError)
"""What opening or decoding one input may raise: each becomes the input's row
(`decode_failure`), never the run's failure."""


def decode_failure(error: Exception, decoded: int) -> tuple[Reason, str]:
    """The reason and detail of an error raised while opening or decoding an input, after
    `decoded` frames (the detail never names a location)."""
    if isinstance(error, DecodeTimeout):
        return TIMEOUT, f"{error}; {decoded} frames decoded"
    if isinstance(error, DecoderCrashed):
        return DECODER_CRASHED, f"{error}; {decoded} frames decoded"
    if isinstance(error, TooManyPixels):
        return TOO_MANY_PIXELS, str(error)
    if isinstance(error, NotRegularFile):
        return NOT_REGULAR_FILE, str(error)
    if isinstance(error, FileTooLarge):
        return FILE_TOO_LARGE, str(error)
    if isinstance(error, DecodeError):
        return (TRUNCATED if decoded else UNDECODABLE), str(error)
    return UNREADABLE, f"{type(error).__name__}: {_without_location(error)}"


def source_frames(source: Source, frames_per_video: int, fail_fast: FailFast | None, limits: DecodeLimits,
                  decoder: DecoderProcess) -> Iterator[tuple[int, np.ndarray] | dict]:
    """(frame index, (H, W, 3) uint8 RGB) of a source's sampled frames, read at its
    `location`, and a failure row (dict, with the source's relative path) where the source
    cannot be read or decoded (after the frames that could be).

    Decoding is bounded (`limits`, e.g. `input_limits` from now): only regular files
    are opened, images by bytes and pixels, and it runs in `decoder`'s process, which is
    stopped when the input's time limit passes (even inside one decoder call) or dies
    with a crash of its own, so a pathological input ends in a row and the run goes on."""
    if media_kind(source.path) is None:
        yield count_dropped(source.path, UNSUPPORTED_TYPE, detail="not a video or image extension",
                            fail_fast=fail_fast)
        return
    decoded = 0
    try:
        with local_file(source.location, limits) as path:
            for item in decoder.frames(limits.deadline, read_frames, path, frames_per_video, limits):
                decoded += 1
                Metrics.counter("frames", "decoded").inc()
                yield item
    except INPUT_ERRORS as error:
        reason, detail = decode_failure(error, decoded)
        yield count_dropped(source.path, reason, detail=detail, fail_fast=fail_fast)


@dataclass(frozen=True)
class AlignedFace:
    """A face found in a frame: its record (no shard yet), crop (S, S, 3) uint8 RGB and
    478-point mesh, crop px."""

    record: FaceRecord
    crop: np.ndarray
    mesh: np.ndarray


def faces_of_frame(detector: FaceDetector, source: Source, index: int, rgb: np.ndarray, size: int, margin: float,
                   fail_fast: FailFast | None = None) -> list[AlignedFace | dict]:
    """Every face kept in one frame, aligned and cropped (`size` px at `margin`), and a
    failure row (dict) for each face dropped, or for the frame when it has no face."""
    accepted, rejected = detector.detect(rgb)
    found: list[AlignedFace | dict] = [count_dropped(source.path, "detect", face.reason, index, face.detail,
                                                     fail_fast) for face in rejected]
    if not accepted and not rejected:
        found.append(count_dropped(source.path, "detect", "no_face", index, fail_fast=fail_fast))
    height, width = rgb.shape[:2]
    for number, face in enumerate(accepted):
        crop, landmarks, mesh, matrix = align_detected(rgb, face.landmarks, face.mesh, size, margin)
        record = FaceRecord(key=face_key(source.dataset, source.video, index, number), dataset=source.dataset,
                            split=source.split, video=source.video, identity=source.identity, frame=index,
                            path=source.path, frame_size=(width, height), box=face.box, score=face.score,
                            landmarks=landmarks, matrix=matrix, crop_size=size, crop_margin=margin)
        Metrics.counter("faces", "kept").inc()
        found.append(AlignedFace(record, crop, mesh))
    return found


@dataclass(frozen=True)
class UnitSummary:
    """What a worker reports of one unit: its index, faces and failure rows written, and
    whether its face shard was kept from an interrupted run."""

    index: int
    faces: int
    failures: int
    kept: bool = False


def unit_record_name(index: int) -> str:
    """`units/shard-NNNNNN.json`: the record of unit `index`, beside its face shard."""
    return f"{shard_name(index)[:-4]}.json"


def read_unit_record(directory: str, index: int) -> dict:
    """{"faces": [faces.parquet rows], "failures": [failures.parquet rows]} of a unit."""
    with FileSystems.open(FileSystems.join(directory, UNIT_RECORDS, unit_record_name(index))) as stream:
        return json.loads(stream.read())


def unit_is_done(directory: str, index: int) -> bool:
    """Whether unit `index` has its face shard (renamed into place last) and its record."""
    return (FileSystems.exists(FileSystems.join(directory, shard_name(index)))
            and FileSystems.exists(FileSystems.join(directory, UNIT_RECORDS, unit_record_name(index))))


class _ExtractUnitsFn(beam.DoFn):
    def __init__(self, directory: str, crops: CropConfig, workers: WorkerConfig, resume: bool, total: int):
        self._directory, self._crops, self._workers = directory, crops, workers
        self._resume, self._total = resume, total
        self._detector: FaceDetector | None = None
        self._decoder: DecoderProcess | None = None
        self._progress: Progress | None = None

    def setup(self):
        set_worker_verbosity(self._workers.verbose)
        self._detector = shared_detector(self._crops.detector)
        self._decoder = shared_decoder()
        self._progress = Progress(self._total, self._workers.workers)
        prepare_worker_process()

    def process(self, lane: Lane):
        for unit in lane.items:
            if not claim(lane, f"unit-{unit.index}"):
                continue
            if self._resume and unit_is_done(self._directory, unit.index):
                record = read_unit_record(self._directory, unit.index)
                Metrics.counter("units", "kept").inc()
                self._progress.update(inputs=len(unit.sources), faces=len(record["faces"]))
                yield UnitSummary(unit.index, len(record["faces"]), len(record["failures"]), kept=True)
            else:
                yield self._extract(unit)

    def _extract(self, unit: Unit) -> UnitSummary:
        crops, fail_fast = self._crops, self._workers.fail_fast
        faces, failures = [], []
        for source in unit.sources:
            for item in source_frames(source, crops.frames_per_video, fail_fast,
                                      input_limits(self._workers.input_timeout), self._decoder):
                if isinstance(item, dict):
                    failures.append(item)
                    continue
                index, rgb = item
                for found in faces_of_frame(self._detector, source, index, rgb, crops.face_size, crops.face_margin,
                                            fail_fast):
                    if isinstance(found, dict):
                        failures.append(found)
                    else:
                        faces.append((found.record, stored_face(found.record, found.crop, found.mesh,
                                                                crops.face_compression)))
                        self._progress.update(faces=1)
            self._progress.update(inputs=1)
        name = shard_name(unit.index)
        shard = AtomicFile(self._directory, name, lambda stream: write_tar(stream, (f for _, f in faces)))
        spans = shard.prepare()
        rows = [record.table_row() | {"shard": name, "image_offset": span["img.png"][0],
                                      "image_bytes": span["img.png"][1], "json_offset": span["json"][0],
                                      "json_bytes": span["json"][1]}
                for (record, _), span in zip(faces, spans, strict=True)]
        record = json.dumps({"unit": unit.index, "faces": rows, "failures": failures}, sort_keys=True).encode()
        write_atomically(FileSystems.join(self._directory, UNIT_RECORDS), unit_record_name(unit.index),
                         lambda stream: stream.write(record))
        shard.commit()
        Metrics.counter("units", "written").inc()
        return UnitSummary(unit.index, len(faces), len(failures))


class ExtractFaces(beam.PTransform):
    """Lanes of units (`pipelines.lanes`) -> UnitSummary per unit; face shards and unit
    records written into `directory` by the workers, each unit by the lane that claims it.
    With `resume`, units whose face shard and record exist are kept. total: inputs in the
    run (progress ETA).
    """

    def __init__(self, directory: str, crops: CropConfig, workers: WorkerConfig, resume: bool = False,
                 total: int = 0):
        super().__init__()
        self._fn = _ExtractUnitsFn(directory, crops, workers, resume, total)

    def expand(self, lanes):
        return (lanes
                | "Spread" >> beam.Reshuffle()
                | "Extract" >> beam.ParDo(self._fn))
