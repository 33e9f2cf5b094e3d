"""ExtractFaces: sources -> aligned face crops (+ failure rows for whatever was dropped)."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from landmarks.align import align_face
from landmarks.detect import FaceDetector
from landmarks.frames import DecodeError, media_kind, read_frames
from pipelines.config import CropConfig, WorkerConfig
from pipelines.progress import Progress
from pipelines.records import Face, Source, failure
from pipelines.worker import prepare_worker_process
from shards.keys import face_key
from shards.png import encode_png

FAILURES = "failures"
"""Tag of the failure-row output of every transform that can drop something."""


class InputFailure(Exception):
    """Raised instead of writing a failure row when the run is --fail-fast."""


def dropped(path: str, stage: str, reason: str, frame: int = -1, detail: str = "", fail_fast: bool = False):
    """A failure row on the FAILURES output, counted as Beam counter `dropped/<reason>`;
    with `fail_fast`, an InputFailure instead."""
    Metrics.counter("dropped", reason).inc()
    if fail_fast:
        raise InputFailure(f"{path}: {stage}/{reason}" + (f" at frame {frame}" if frame >= 0 else "")
                           + (f": {detail}" if detail else ""))
    return beam.pvalue.TaggedOutput(FAILURES, failure(path, stage, reason, frame, detail))


def crop_faces(detector: FaceDetector, source: Source, index: int, rgb, size: int, margin: float,
               fail_fast: bool = False):
    """Faces of one frame as aligned `Face` crops, and a failure row (TaggedOutput) for
    each face dropped, or for the frame when it has no face."""
    accepted, rejected = detector.detect(rgb)
    for face in rejected:
        yield dropped(source.path, "detect", face.reason, index, face.detail, fail_fast)
    if not accepted and not rejected:
        yield dropped(source.path, "detect", "no_face", index, fail_fast=fail_fast)
    for number, face in enumerate(accepted):
        crop, landmarks, matrix = align_face(rgb, face.landmarks, size, margin)
        Metrics.counter("faces", "kept").inc()
        yield Face(key=face_key(source.dataset, source.video, index, number), source=source,
                   frame=index, box=face.box, score=face.score, landmarks=landmarks,
                   image=encode_png(crop), matrix=matrix)


@contextmanager
def local_file(path: str):
    """A local path for `path`: itself when local, else a temporary copy (OpenCV reads
    only local files)."""
    if "://" not in path:
        yield path
        return
    suffix = os.path.splitext(path)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy:
        with FileSystems.open(path) as remote:
            shutil.copyfileobj(remote, copy)
        copy.flush()
        yield copy.name


class _ExtractFacesFn(beam.DoFn):
    def __init__(self, crops: CropConfig, workers: WorkerConfig, total: int):
        self._crops, self._workers, self._total = crops, workers, total
        self._detector: FaceDetector | None = None
        self._progress: Progress | None = None
        self._frames = Metrics.counter("frames", "decoded")

    def setup(self):
        self._detector = FaceDetector(self._crops.detector)  # once per worker, not per element
        self._progress = Progress(self._total, self._workers.workers)
        prepare_worker_process()

    def teardown(self):
        if self._detector is not None:
            self._detector.close()

    def process(self, source: Source):
        crops, fail_fast = self._crops, self._workers.fail_fast
        if media_kind(source.path) is None:
            yield dropped(source.path, "read", "unsupported_type", detail="not a video or image extension",
                          fail_fast=fail_fast)
            return
        if "://" not in source.path and not os.access(source.path, os.R_OK):
            yield dropped(source.path, "read", "unreadable", detail="no read permission, or a dangling link",
                          fail_fast=fail_fast)
            return
        decoded = 0
        try:
            with local_file(source.path) as path:
                for index, rgb in read_frames(path, crops.frames_per_video):
                    decoded += 1
                    self._frames.inc()
                    for item in crop_faces(self._detector, source, index, rgb, crops.size, crops.margin, fail_fast):
                        self._progress.update(faces=isinstance(item, Face))
                        yield item
        except DecodeError as error:
            yield dropped(source.path, "decode", "truncated" if decoded else "undecodable", detail=str(error),
                          fail_fast=fail_fast)
        except OSError as error:
            yield dropped(source.path, "read", "unreadable", detail=f"{type(error).__name__}: {error}",
                          fail_fast=fail_fast)
        self._progress.update(inputs=1)


class ExtractFaces(beam.PTransform):
    """Source -> Face (main output) and failure rows (tag FAILURES).

    Videos are decoded one frame at a time; `crops.frames_per_video` evenly spaced frames
    are used. MediaPipe loads once per worker (DoFn.setup). total: inputs in the run
    (progress ETA).
    """

    def __init__(self, crops: CropConfig, workers: WorkerConfig, total: int = 0):
        super().__init__()
        self._fn = _ExtractFacesFn(crops, workers, total)

    def expand(self, sources):
        return (sources
                | "Spread" >> beam.Reshuffle()
                | "Detect" >> beam.ParDo(self._fn).with_outputs(FAILURES, main="faces"))
