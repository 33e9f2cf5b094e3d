"""The decoding process: frames equal to decoding in this process, errors of their own
type, and a hard time limit: a call that never returns is stopped, a crash is an error of
that input, and the next call gets a fresh process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import stalls
from landmarks.decoder import HARD_GRACE, DecoderCrashed, DecoderProcess
from landmarks.frames import (DecodeLimits, DecodeTimeout, NotRegularFile, StreamEnded, frame_size, read_frames,
                              read_video_frames)

VIDEO = "real_videos/ffpp_c23__004.mp4"   # 1280 x 720


@pytest.fixture
def decoder():
    with DecoderProcess() as process:
        process.start()
        yield process


@pytest.fixture
def stall(stall_fifo, monkeypatch):
    """(Before `decoder`: its process takes the environment it starts with.)"""
    monkeypatch.setenv("STALL_NAMES", "stall.mp4")
    monkeypatch.setenv("CRASH_NAMES", "crash.mp4")
    return stall_fifo


def test_frames_equal_those_decoded_here(decoder, shared_data):
    path = str(shared_data / VIDEO)
    here = list(read_frames(path, 6))
    there = list(decoder.frames(None, read_frames, path, 6))
    assert [i for i, _ in there] == [i for i, _ in here] and len(here) == 6
    assert all(a.shape == (720, 1280, 3) and np.array_equal(a, b) for (_, a), (_, b) in zip(there, here))
    assert decoder.call(None, frame_size, path) == (1280, 720)


def test_interleaved_and_abandoned_streams(decoder, shared_data):
    path = str(shared_data / VIDEO)
    first = decoder.frames(None, read_video_frames, path, [0, 5, 9])
    second = decoder.frames(None, read_video_frames, path, [1, 5])
    assert [next(first)[0], next(second)[0], next(first)[0], next(second)[0]] == [0, 1, 5, 5]
    del first, second          # abandoned mid-way: closed in the child at the next call
    assert [i for i, _ in decoder.frames(None, read_video_frames, path, [2, 3])] == [2, 3]


def test_errors_keep_their_type(decoder, shared_data, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="a FIFO"):
        list(decoder.frames(None, read_frames, str(fifo), 2))
    cut = tmp_path / "cut.mp4"
    whole = (shared_data / "real_videos/liveportrait__d20.mp4").read_bytes()
    cut.write_bytes(whole[: len(whole) * 2 // 5])
    got = []
    with pytest.raises(StreamEnded) as ended:
        for index, _ in decoder.frames(None, read_frames, str(cut), 8):
            got.append(index)
    assert ended.value.frames == 65 and len(got) == 8
    with pytest.raises(FileNotFoundError):
        decoder.call(None, frame_size, str(tmp_path / "missing.mp4"))


def test_a_call_that_never_returns_is_stopped_and_the_next_one_works(stall, decoder, shared_data, tmp_path):
    video = tmp_path / "stall.mp4"
    video.symlink_to(shared_data / VIDEO)
    limits = DecodeLimits(deadline=time.monotonic() + 1.0)
    start, got = time.monotonic(), []
    with pytest.raises(DecodeTimeout, match="no answer from the decoding process"):
        for index, _ in decoder.frames(limits.deadline, stalls.read_frames, str(video), 4, limits):
            got.append(index)
    waited = time.monotonic() - start
    assert got == [0] and 1.0 <= waited < 1.0 + HARD_GRACE + 2.0
    assert decoder.call(None, frame_size, str(shared_data / VIDEO)) == (1280, 720)


def test_a_crash_is_an_error_of_the_call_and_the_next_one_works(stall, decoder, shared_data, tmp_path):
    video = tmp_path / "crash.mp4"
    video.symlink_to(shared_data / VIDEO)
    with pytest.raises(DecoderCrashed, match=f"signal {signal.SIGSEGV.value}"):
        list(decoder.frames(None, stalls.read_frames, str(video), 4))
    assert decoder.call(None, frame_size, str(shared_data / VIDEO)) == (1280, 720)


def test_the_child_ends_with_its_parent(tmp_path):
    """A worker killed outright (SIGKILL) leaves no decoding process behind, even one
    blocked in a call."""
    script = ("import sys, time; from landmarks.decoder import DecoderProcess; d = DecoderProcess(); d.start(); "
              "print(d._child.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
