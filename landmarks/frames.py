"""Frame sampling and decoding of videos and still images, one frame in memory at a time."""
from __future__ import annotations

import io
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath

import cv2
import numpy as np

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".3gp"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


VERBOSE_ENV = "FORGERY_VERBOSE"
"""When set (`beam -v`), native libraries' log lines are not silenced."""


@contextmanager
def quiet_native_logs():
    """Silence what native libraries (FFmpeg, libpng, OpenCV, MediaPipe, TensorFlow Lite,
    absl) write straight to the process's stderr while this block runs, unless
    $FORGERY_VERBOSE is set. Python's own stderr is flushed first. Failures are reported
    as exceptions and rows, so these lines add nothing by default."""
    if os.environ.get(VERBOSE_ENV):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class DecodeError(Exception):
    """The file could not be decoded as a video or image."""


class StreamEnded(DecodeError):
    """A video's stream ended before its planned frames: `frames` frames exist."""

    def __init__(self, message: str, frames: int):
        super().__init__(message)
        self.frames = frames

    def __reduce__(self):
        return type(self), (str(self), self.frames)


class DecodeTimeout(DecodeError):
    """Decoding passed its deadline (checked between frames)."""


class TooManyPixels(DecodeError):
    """An image or video frame above the pixel limit (and no reduced decoding applies)."""


class NotRegularFile(OSError):
    """Not a regular file (FIFO, device, socket, folder): never opened, so it cannot hang
    or read without end."""


class FileTooLarge(OSError):
    """An image file above the byte limit (it is read whole before decoding)."""


MAX_PIXELS = 64_000_000
"""Largest frame decoded at full size (8,000 x 8,000 px; ~190 MB as RGB). A larger JPEG is
decoded at 1/2, 1/4 or 1/8 size by the decoder itself (never held whole); other formats
are refused."""
MAX_IMAGE_BYTES = 512 * 1024 * 1024
"""Largest image file read (images are read whole, then decoded)."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on decoding one input. max_pixels: see MAX_PIXELS. max_image_bytes: see
    MAX_IMAGE_BYTES. deadline: `time.monotonic()` after which decoding stops with
    DecodeTimeout (checked between frames), None for no limit."""

    max_pixels: int = MAX_PIXELS
    max_image_bytes: int = MAX_IMAGE_BYTES
    deadline: float | None = None

    def check_time(self, what: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DecodeTimeout(f"time limit reached {what}")


NO_LIMITS = DecodeLimits(max_pixels=2**62, max_image_bytes=2**62)


def require_regular_file(path: str) -> os.stat_result:
    """`os.stat` of `path` (links followed); NotRegularFile unless it is a regular file."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = ("FIFO" if stat.S_ISFIFO(info.st_mode) else "character device" if stat.S_ISCHR(info.st_mode)
                else "block device" if stat.S_ISBLK(info.st_mode) else "socket" if stat.S_ISSOCK(info.st_mode)
                else "folder" if stat.S_ISDIR(info.st_mode) else "non-regular file")
        raise NotRegularFile(f"a {kind}, not a regular file")
    return info


def same_bytes(a: str, b: str) -> bool:
    """Whether two local regular files hold the same bytes (NotRegularFile for anything
    else): the same file by its real path, else sizes, then a streamed compare."""
    sizes = require_regular_file(a).st_size, require_regular_file(b).st_size
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    if sizes[0] != sizes[1]:
        return False
    with open(a, "rb") as first, open(b, "rb") as second:
        while True:
            x, y = first.read(1 << 20), second.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def media_kind(path: str) -> str | None:
    """'video', 'image' or None, from the file extension (case-insensitive)."""
    suffix = PurePath(path).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def evenly_spaced(frame_count: int, n: int) -> list[int]:
    """n frame indices spread evenly over [0, frame_count), first and last included;
    all frames when n >= frame_count. Sorted, unique."""
    if frame_count <= 0 or n <= 0:
        return []
    if n >= frame_count:
        return list(range(frame_count))
    return sorted(set(np.linspace(0, frame_count - 1, n).round().astype(int).tolist()))


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def image_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, format) read from an encoded image's header without decoding its
    pixels; None when the header is not understood."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # only the header is read: no bomb check
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.size[0]), int(image.size[1]), image.format or ""
    except Exception:  # noqa: BLE001 - any header the parser rejects: let the decoder judge
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 RGB (grey and alpha images converted).

    The size is read from the header first: above `max_pixels` a JPEG is decoded reduced
    by 2, 4 or 8 (the smallest factor that fits), anything else raises TooManyPixels.
    """
    header = image_header(data)
    flag = cv2.IMREAD_COLOR
    if header is not None:
        width, height, kind = header
        if width * height > max_pixels:
            factor = next((f for f in (2, 4, 8) if width * height / f ** 2 <= max_pixels), None)
            if kind != "JPEG" or factor is None:
                raise TooManyPixels(f"{width}x{height} px ({width * height / 1e6:.0f} MP) is above the limit of "
                                    f"{max_pixels / 1e6:.0f} MP")
            flag = _REDUCED[factor]
    if not data:
        raise DecodeError("empty file")
    try:
        with quiet_native_logs():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as error:
        raise DecodeError(f"not a decodable image: {str(error).strip().splitlines()[-1]}") from error
    if image is None:
        raise DecodeError("not a decodable image")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise TooManyPixels(f"{image.shape[1]}x{image.shape[0]} px is above the limit of {max_pixels / 1e6:.0f} MP")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """A local image file -> (H, W, 3) uint8 RGB, within `limits`: only a regular file is
    opened, and only when it is under the byte limit."""
    info = require_regular_file(path)
    if info.st_size > limits.max_image_bytes:
        raise FileTooLarge(f"{info.st_size} bytes is above the limit of {limits.max_image_bytes} bytes")
    with open(path, "rb") as stream:
        data = stream.read(limits.max_image_bytes + 1)
    if len(data) > limits.max_image_bytes:
        raise FileTooLarge(f"more than {limits.max_image_bytes} bytes")
    return decode_image(data, limits.max_pixels)


def read_frames(path: str, frames_per_video: int,
                limits: DecodeLimits = DecodeLimits()) -> Iterator[tuple[int, np.ndarray]]:
    """Frames of a local video or image file: yields (frame index, (H, W, 3) uint8 RGB).
    An image is frame 0 of a one-frame video; a video gives `frames_per_video` evenly
    spaced frames. Only regular files are opened; `limits` bound pixels, bytes and time."""
    require_regular_file(path)
    if media_kind(path) == "image":
        yield 0, read_image(path, limits)
        return
    header = video_frame_count(path, limits)
    done: set[int] = set()
    try:
        for index, rgb in read_video_frames(path, evenly_spaced(header, frames_per_video), limits):
            done.add(index)
            yield index, rgb
    except StreamEnded as ended:
        # The header over-stated the frame count (a cut download, a wrong header): the plan
        # is made again over the frames that exist, so the sample still spans the video.
        plan = [i for i in evenly_spaced(ended.frames, frames_per_video) if i not in done]
        missing = [plan[k] for k in evenly_spaced(len(plan), frames_per_video - len(done))]
        if missing:
            for index, rgb in read_video_frames(path, missing, limits):
                yield index, rgb
        raise StreamEnded(f"the header says {header} frames, the stream ends after {ended.frames}: "
                          f"{len(done) + len(missing)} frames sampled from those", ended.frames) from None


def _open_video(path: str, limits: DecodeLimits) -> cv2.VideoCapture:
    require_regular_file(path)
    with quiet_native_logs():
        capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise DecodeError("no video stream could be opened")
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if width * height > limits.max_pixels:
        capture.release()
        raise TooManyPixels(f"{width:.0f}x{height:.0f} px frames are above the limit of "
                            f"{limits.max_pixels / 1e6:.0f} MP")
    return capture


def video_frame_count(path: str, limits: DecodeLimits = DecodeLimits()) -> int:
    """Frames in a local video: the container's count, or a full grab pass when the
    container does not say. Raises DecodeError when no video stream opens."""
    capture = _open_video(path, limits)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = _grab_all(capture, limits)
        return count
    finally:
        capture.release()


def decodable_frame_count(path: str, limits: DecodeLimits = DecodeLimits()) -> int:
    """Frames a full grab pass over a local video reaches (not the header's count)."""
    capture = _open_video(path, limits)
    try:
        return _grab_all(capture, limits)
    finally:
        capture.release()


def _grab_all(capture: cv2.VideoCapture, limits: DecodeLimits) -> int:
    count = 0
    with quiet_native_logs():
        while capture.grab():
            count += 1
            limits.check_time(f"counting frames (at frame {count})")
    return count


def frame_size(path: str, limits: DecodeLimits = DecodeLimits()) -> tuple[int, int]:
    """(width, height) of a local video's frames, from its header."""
    capture = _open_video(path, limits)
    try:
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()


def read_video_frames(path: str, indices: list[int],
                      limits: DecodeLimits = DecodeLimits()) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, (H, W, 3) uint8 RGB) for the sorted frame `indices` of a video.

    Every frame is grabbed in order and only the chosen ones are decoded to pixels: ~10x
    faster than seeking. Raises DecodeError after the last decodable frame when the stream
    ends before all indices were read (StreamEnded: truncated file, wrong header count),
    and DecodeTimeout when `limits.deadline` passes (checked at every frame).
    """
    capture = _open_video(path, limits)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # apply rotation metadata (phone videos)
    try:
        index, decoded = -1, 0
        for target in indices:
            with quiet_native_logs():
                while index < target:
                    limits.check_time(f"after frame {index}: {decoded} of {len(indices)} planned frames decoded")
                    if not capture.grab():
                        raise StreamEnded(f"stream ended after frame {index}: {decoded} of "
                                          f"{len(indices)} planned frames decoded", index + 1)
                    index += 1
                ok, bgr = capture.retrieve()
            if ok and bgr is not None:
                decoded += 1
                yield target, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if decoded < len(indices):
            raise DecodeError(f"{len(indices) - decoded} of {len(indices)} planned frames could not be decoded")
    finally:
        capture.release()
