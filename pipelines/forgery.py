"""ExtractForgeries: (original video, its manipulated videos) -> pixel-aligned crop pairs.

Every video of a group is read at the same frame indices. Faces are found on the original
frame only, and the same frame-to-crop matrix crops the original, each fake and each
official mask frame, so the crops are pixel-aligned and go through identical decoding,
warping and (later) encoding.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from blending.masks import difference_mask, official_mask
from landmarks.align import warp_crop
from landmarks.detect import FaceDetector
from landmarks.frames import DecodeError, evenly_spaced, read_video_frames, video_frame_count
from pipelines.config import CropConfig, WorkerConfig
from pipelines.extract import FAILURES, dropped, faces_of_frame, local_file
from pipelines.progress import Progress
from pipelines.records import Face, Source
from pipelines.worker import prepare_worker_process
from shards.keys import face_key, parse_key
from shards.png import encode_png


@dataclass(frozen=True)
class MaskOptions:
    """source: 'diff' (from |fake - original|) or 'official' (the dataset's mask video when
    there is one, else diff). smooth_sigma (px at 256 px crops, scaled with the crop),
    threshold (grey levels; 0 = soft normalised difference) and cleanup (px): see
    `blending.masks.difference_mask`."""

    source: str = "diff"
    smooth_sigma: float = 5.0
    threshold: float = 12.0
    cleanup: int = 5

    def __post_init__(self):
        if self.source not in ("diff", "official"):
            raise ValueError(f"mask source must be 'diff' or 'official', got {self.source!r}")


@dataclass(frozen=True)
class ForgeryCrop:
    """A manipulated face crop: `face` is the fake's Face (crop from the fake frame; box,
    landmarks and matrix of the same face of the original frame); mask (S, S) float32 in [0, 1];
    mask_source 'diff' or 'official'; original_key: key of the original's face."""

    face: Face
    mask: np.ndarray
    mask_source: str
    original_key: str


class _ExtractForgeriesFn(beam.DoFn):
    def __init__(self, crops: CropConfig, masks: MaskOptions, workers: WorkerConfig, total: int):
        self._crops, self._masks, self._workers, self._total = crops, masks, workers, total
        self._fail_fast = workers.fail_fast
        self._detector: FaceDetector | None = None
        self._progress: Progress | None = None

    def setup(self):
        self._detector = FaceDetector(self._crops.detector)
        self._progress = Progress(self._total, self._workers.workers)
        prepare_worker_process()

    def teardown(self):
        if self._detector is not None:
            self._detector.close()

    def process(self, group: tuple[Source, list[Source]]):
        for item in self._process(group):
            self._progress.update(faces=isinstance(item, (Face, ForgeryCrop)))
            yield item
        self._progress.update(inputs=1)

    def _process(self, group: tuple[Source, list[Source]]):
        original, fakes = group
        with ExitStack() as stack:
            try:
                local = {s.path: stack.enter_context(local_file(s.path)) for s in (original, *fakes)}
                counts = {path: video_frame_count(p) for path, p in local.items()}
            except (DecodeError, OSError) as error:
                yield dropped(original.path, "decode", "undecodable", detail=f"group of {original.path}: {error}",
                              fail_fast=self._fail_fast)
                return
            indices = evenly_spaced(min(counts.values()), self._crops.frames_per_video)
            faces: dict[int, list[tuple[Face, np.ndarray]]] = {}  # frame -> original faces, their crops
            try:
                for index, rgb in read_video_frames(local[original.path], indices):
                    Metrics.counter("frames", "decoded").inc()
                    for found in faces_of_frame(self._detector, original, index, rgb, self._crops.size,
                                                self._crops.margin, self._fail_fast):
                        if isinstance(found, dict):
                            yield beam.pvalue.TaggedOutput(FAILURES, found)
                            continue
                        face = Face(found.record, original, encode_png(found.crop))
                        faces.setdefault(index, []).append((face, found.crop))
                        yield face
            except DecodeError as error:
                yield dropped(original.path, "decode", "truncated" if faces else "undecodable", detail=str(error),
                              fail_fast=self._fail_fast)
            for fake in fakes:
                yield from self._fake_crops(fake, local[fake.path], faces, stack)

    def _fake_crops(self, fake: Source, path: str, faces: dict[int, list[tuple[Face, np.ndarray]]],
                    stack: ExitStack):
        indices = sorted(faces)
        use_official = self._masks.source == "official" and bool(fake.mask)
        size = self._crops.size
        masks = (read_video_frames(stack.enter_context(local_file(fake.mask)), indices)
                 if use_official else None)
        scale = size / 256
        try:
            for index, rgb in read_video_frames(path, indices):
                mask_frame = None
                if masks is not None:
                    mask_index, mask_frame = next(masks)
                    if mask_index != index:
                        yield dropped(fake.mask, "decode", "mask_frame_missing", index,
                                      f"mask video gave frame {mask_index} instead", self._fail_fast)
                        continue
                for original, original_crop in faces[index]:
                    matrix = original.record.matrix
                    crop = warp_crop(rgb, matrix, size)
                    if mask_frame is not None:
                        mask = official_mask(warp_crop(mask_frame, matrix, size))
                    else:
                        mask = difference_mask(crop, original_crop, self._masks.smooth_sigma * scale,
                                               self._masks.threshold, max(1, round(self._masks.cleanup * scale)))
                    Metrics.counter("faces", "manipulated").inc()
                    key = face_key(fake.dataset, fake.video, index, parse_key(original.key).face)
                    record = replace(original.record, key=key, dataset=fake.dataset, video=fake.video,
                                     identity=fake.identity, split=fake.split, path=fake.path)
                    yield ForgeryCrop(Face(record, fake, encode_png(crop)), mask,
                                      "official" if use_official else "diff", original.key)
        except (DecodeError, StopIteration) as error:
            yield dropped(fake.path, "decode", "truncated", detail=f"{type(error).__name__}: {error}",
                          fail_fast=self._fail_fast)


class ExtractForgeries(beam.PTransform):
    """(original Source, [manipulated Sources]) -> Face of the original (tag 'faces'),
    ForgeryCrop (tag 'forgeries') and failure rows (tag FAILURES). total: groups in the
    run (progress ETA)."""

    def __init__(self, crops: CropConfig, masks: MaskOptions, workers: WorkerConfig, total: int = 0):
        super().__init__()
        self._fn = _ExtractForgeriesFn(crops, masks, workers, total)

    def expand(self, groups):
        split = (groups
                 | "Spread" >> beam.Reshuffle()
                 | "Extract" >> beam.ParDo(self._fn).with_outputs(FAILURES, main="items"))
        outputs = split.items | "ByKind" >> beam.Partition(lambda item, _: 0 if isinstance(item, Face) else 1, 2)
        return {"faces": outputs[0], "forgeries": outputs[1], FAILURES: split[FAILURES]}
