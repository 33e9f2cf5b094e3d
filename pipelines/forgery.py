"""ExtractForgeries: (original video, its manipulated videos) -> pixel-aligned crop pairs.

Every video of a group is read at the same frame indices. Faces are found on the original
frame only, and the same frame-to-crop matrix crops the original, each fake and each
official mask frame, so the crops are pixel-aligned and go through identical decoding,
warping and (later) encoding.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from blending.masks import difference_mask, official_mask
from landmarks.align import warp_crop
from landmarks.decoder import DecoderProcess
from landmarks.detect import FaceDetector
from landmarks.frames import (DecodeLimits, DecodeTimeout, decodable_frame_count, evenly_spaced,
                              frame_size, read_video_frames, same_bytes)
from pipelines.config import CropConfig, WorkerConfig
from pipelines.extract import INPUT_ERRORS, count_dropped, decode_failure, faces_of_frame, input_limits, local_file
from pipelines.failures import (FRAME_COUNT_MISMATCH, IDENTICAL_TO_ORIGINAL, MASK_FRAME_MISSING, NO_ORIGINAL_FACE,
                                ORIGINAL_UNUSABLE, SIZE_MISMATCH, TIMEOUT, UNDECODABLE)
from pipelines.progress import Progress
from pipelines.records import Face, Source
from pipelines.worker import prepare_worker_process, set_worker_verbosity, shared_decoder, shared_detector
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
        self._decoder: DecoderProcess | None = None
        self._progress: Progress | None = None

    def setup(self):
        set_worker_verbosity(self._workers.verbose)
        self._detector = shared_detector(self._crops.detector)
        self._decoder = shared_decoder()
        self._progress = Progress(self._total, self._workers.workers)
        prepare_worker_process()

    def process(self, group: tuple[Source, list[Source]]):
        for item in self._process(group):
            self._progress.update(faces=isinstance(item, (Face, ForgeryCrop)))
            yield item
        self._progress.update(inputs=1)

    def _process(self, group: tuple[Source, list[Source]]):
        """Check the pair first (regular files, same bytes, frame size, frames that really
        decode), then read the original and each usable fake at the same frames. The whole
        group shares one --input-timeout; every file is opened and decoded in the decoding
        process, which is stopped when it passes."""
        original, fakes = group
        limits = input_limits(self._workers.input_timeout)
        in_child = partial(self._decoder.call, limits.deadline)
        fail_fast = self._fail_fast
        with ExitStack() as stack:
            try:
                local = {original.path: stack.enter_context(local_file(original.location, limits))}
                size = in_child(frame_size, local[original.path], limits)
                counts = {original.path: in_child(decodable_frame_count, local[original.path], limits)}
            except INPUT_ERRORS as error:
                reason, detail = decode_failure(error, 0)
                yield count_dropped(original.path, reason, detail=f"original of {len(fakes)} fakes: {detail}",
                              fail_fast=fail_fast)
                for fake in fakes:
                    yield count_dropped(fake.path, ORIGINAL_UNUSABLE, detail=f"{original.path}: {reason}",
                                  fail_fast=fail_fast)
                return
            usable = []
            for fake in fakes:
                try:
                    local[fake.path] = stack.enter_context(local_file(fake.location, limits))
                    if in_child(same_bytes, local[original.path], local[fake.path]):
                        yield count_dropped(fake.path, IDENTICAL_TO_ORIGINAL, detail=f"same bytes as {original.path}",
                                      fail_fast=fail_fast)
                        continue
                    fake_size = in_child(frame_size, local[fake.path], limits)
                    if fake_size != size:
                        yield count_dropped(fake.path, SIZE_MISMATCH,
                                      detail=f"fake {fake_size[0]}x{fake_size[1]}, original {size[0]}x{size[1]}: "
                                             f"its crops would not align with the original's",
                                      fail_fast=fail_fast)
                        continue
                    counts[fake.path] = in_child(decodable_frame_count, local[fake.path], limits)
                except INPUT_ERRORS as error:
                    reason, detail = decode_failure(error, 0)
                    yield count_dropped(fake.path, reason, detail=detail, fail_fast=fail_fast)
                    continue
                if counts[fake.path] == 0:
                    yield count_dropped(fake.path, UNDECODABLE, detail="no frame decodes", fail_fast=fail_fast)
                    continue
                if counts[fake.path] != counts[original.path]:
                    yield count_dropped(fake.path, FRAME_COUNT_MISMATCH,
                                  detail=f"fake {counts[fake.path]} decodable frames, original "
                                         f"{counts[original.path]}: only the first "
                                         f"{min(counts[fake.path], counts[original.path])} are sampled",
                                  fail_fast=fail_fast)
                usable.append(fake)
            indices = evenly_spaced(min(counts[p] for p in (original.path, *(f.path for f in usable))),
                                    self._crops.frames_per_video)
            faces: dict[int, list[tuple[Face, np.ndarray]]] = {}  # frame -> original faces, their crops
            decoded = 0
            try:
                for index, rgb in self._decoder.frames(limits.deadline, read_video_frames, local[original.path],
                                                       indices, limits):
                    decoded += 1
                    Metrics.counter("frames", "decoded").inc()
                    for found in faces_of_frame(self._detector, original, index, rgb, self._crops.size,
                                                self._crops.margin, fail_fast):
                        if isinstance(found, dict):
                            yield found
                            continue
                        face = Face(found.record, original, encode_png(found.crop))
                        faces.setdefault(index, []).append((face, found.crop))
                        yield face
            except INPUT_ERRORS as error:
                reason, detail = decode_failure(error, decoded)
                yield count_dropped(original.path, reason, detail=detail, fail_fast=fail_fast)
                if isinstance(error, DecodeTimeout):
                    for fake in usable:
                        yield count_dropped(fake.path, TIMEOUT, detail="the group's time went to its original",
                                      fail_fast=fail_fast)
                    return
            for fake in usable:
                if not faces:
                    yield count_dropped(fake.path, NO_ORIGINAL_FACE, detail=f"{original.path}: no face kept at the "
                                  f"{len(indices)} sampled frames (see its rows)", fail_fast=fail_fast)
                    continue
                yield from self._fake_crops(fake, local[fake.path], faces, size, stack, limits)

    def _fake_crops(self, fake: Source, path: str, faces: dict[int, list[tuple[Face, np.ndarray]]],
                    size: tuple[int, int], stack: ExitStack, limits: DecodeLimits):
        """The fake's crops at the original's face frames, each with its mask: the official
        mask frame when asked for and usable, else from differences (recorded per crop)."""
        indices = sorted(faces)
        masks = None
        if self._masks.source == "official" and fake.mask:
            masks = yield from self._official_masks(fake, size, indices, stack, limits)
        side = self._crops.size
        scale = side / 256
        pending, read, done = None, 0, 0   # pending: the mask frame read ahead of the fake's
        try:
            for index, rgb in self._decoder.frames(limits.deadline, read_video_frames, path, indices, limits):
                done += 1
                mask_frame = None
                if masks is not None:
                    try:
                        while pending is None or pending[0] < index:
                            pending = next(masks)
                            read += 1
                    except StopIteration:
                        yield count_dropped(fake.mask, MASK_FRAME_MISSING, frame=index,
                                            detail="the mask video ends before this frame: masks from differences "
                                                   "from here", fail_fast=self._fail_fast)
                        masks = None
                    except INPUT_ERRORS as error:
                        reason, detail = decode_failure(error, read)
                        yield count_dropped(fake.mask, reason, frame=index,
                                            detail=f"{detail}; masks from differences from here",
                                            fail_fast=self._fail_fast)
                        masks = None
                    else:
                        if pending[0] == index:
                            mask_frame = pending[1]
                        else:
                            yield count_dropped(fake.mask, MASK_FRAME_MISSING, frame=index,
                                                detail="the mask video lacks this frame: its mask from differences",
                                                fail_fast=self._fail_fast)
                for original, original_crop in faces[index]:
                    matrix = original.record.matrix
                    crop = warp_crop(rgb, matrix, side)
                    if mask_frame is not None:
                        mask = official_mask(warp_crop(mask_frame, matrix, side))
                    else:
                        mask = difference_mask(crop, original_crop, self._masks.smooth_sigma * scale,
                                               self._masks.threshold, max(1, round(self._masks.cleanup * scale)))
                    Metrics.counter("faces", "manipulated").inc()
                    key = face_key(fake.dataset, fake.video, index, parse_key(original.key).face)
                    record = replace(original.record, key=key, dataset=fake.dataset, video=fake.video,
                                     identity=fake.identity, split=fake.split, path=fake.path)
                    yield ForgeryCrop(Face(record, fake, encode_png(crop)), mask,
                                      "official" if mask_frame is not None else "diff", original.key)
        except INPUT_ERRORS as error:
            reason, detail = decode_failure(error, done)
            yield count_dropped(fake.path, reason, detail=detail, fail_fast=self._fail_fast)

    def _official_masks(self, fake: Source, size: tuple[int, int], indices: list[int], stack: ExitStack,
                        limits: DecodeLimits):
        """The frames at `indices` of the fake's official mask video (returned as an
        iterator), or None, after its row, when the video cannot be opened or its frames are
        not the fake's size (its masks would not align): the fake's masks then come from
        differences."""
        try:
            video = stack.enter_context(local_file(fake.locate(fake.mask), limits))
            mask_size = self._decoder.call(limits.deadline, frame_size, video, limits)
        except INPUT_ERRORS as error:
            reason, detail = decode_failure(error, 0)
            yield count_dropped(fake.mask, reason, detail=f"{detail}; masks from differences",
                                fail_fast=self._fail_fast)
            return None
        if mask_size != size:
            yield count_dropped(fake.mask, SIZE_MISMATCH,
                                detail=f"mask video {mask_size[0]}x{mask_size[1]}, fake {size[0]}x{size[1]}: its "
                                       f"masks would not align; masks from differences", fail_fast=self._fail_fast)
            return None
        return self._decoder.frames(limits.deadline, read_video_frames, video, indices, limits)


class ExtractForgeries(beam.PTransform):
    """(original Source, [manipulated Sources]) -> one stream of the original's Faces,
    ForgeryCrops and failure rows (dicts); select each with `pipelines.collect.Only`.
    total: groups in the run (progress ETA)."""

    def __init__(self, crops: CropConfig, masks: MaskOptions, workers: WorkerConfig, total: int = 0):
        super().__init__()
        self._fn = _ExtractForgeriesFn(crops, masks, workers, total)

    def expand(self, groups):
        return (groups
                | "Spread" >> beam.Reshuffle()
                | "Extract" >> beam.ParDo(self._fn))
