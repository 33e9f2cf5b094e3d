"""Decoding functions that misbehave inside the decoding process the way a stalled network
mount or a crashing codec would, for the tests of the hard time limit and of crash
isolation. A file whose name is listed in $STALL_NAMES blocks for ever in `open()` of the
FIFO $STALL_FIFO, which nobody writes (a read that never returns); one listed in
$CRASH_NAMES ends the process with SIGSEGV. Other files decode as usual."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from landmarks import frames


def _misbehave(path: str) -> None:
    name = Path(path).name
    if name in os.environ.get("STALL_NAMES", "").split(","):
        open(os.environ["STALL_FIFO"], "rb").close()    # blocks: the FIFO has no writer
    if name in os.environ.get("CRASH_NAMES", "").split(","):
        os.kill(os.getpid(), signal.SIGSEGV)


def read_frames(path: str, frames_per_video: int, limits: frames.DecodeLimits = frames.DecodeLimits()):
    """`landmarks.frames.read_frames`; a misbehaving video does so after its first frame."""
    items = frames.read_frames(path, frames_per_video, limits)
    if frames.media_kind(path) == "video":
        yield next(items)
    _misbehave(path)
    yield from items


def decodable_frame_count(path: str, limits: frames.DecodeLimits = frames.DecodeLimits()) -> int:
    """`landmarks.frames.decodable_frame_count`, misbehaving first."""
    _misbehave(path)
    return frames.decodable_frame_count(path, limits)
