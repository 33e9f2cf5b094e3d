"""Decoding in a child process, so that a time limit is hard.

A decoder call that never returns (a read that blocks on a stalled network mount, FFmpeg
looping on a pathological file) cannot be interrupted inside the process that made it,
and a crash inside FFmpeg or a codec takes that process down. `DecoderProcess` runs the
decoding functions of `landmarks.frames` (any module-level function, named by reference)
in a child process: when the child has not answered `HARD_GRACE` seconds after the caller's
deadline it is killed (`DecodeTimeout`); when it dies, the call raises `DecoderCrashed`.
Either way a fresh child is started at once for the next call.

Only the frames the caller asked for cross between the processes, each once, through a
memory file both map (not a pipe); the control messages (calls, frame shapes, results,
exceptions) are small pickles on a socket.
"""
from __future__ import annotations

import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from itertools import count
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from landmarks.frames import VERBOSE_ENV, DecodeError, DecodeTimeout

_INITIAL_BUFFER = 1920 * 1080 * 3
"""Bytes of the shared frame buffer at first; it grows to the largest frame sent."""
HARD_GRACE = 1.0
"""Seconds past a call's deadline after which a child that has not answered is killed."""
_START_LIMIT = 120.0
"""Seconds a new decoding process may take to be ready (its imports, on a loaded machine)."""
_START = "import sys; from landmarks.decoder import _serve; _serve(int(sys.argv[1]), int(sys.argv[2]))"


class DecoderUnavailable(RuntimeError):
    """No decoding process could be started: a problem of the machine, not of an input."""


class DecoderCrashed(DecodeError):
    """The decoding process died during a call (e.g. a crash inside FFmpeg or a codec on
    this file, or the system killing it for memory)."""


class DecoderProcess:
    """A child process that runs decoding functions for this process, one call at a time.

    `call(deadline, function, *args)` returns `function(*args)`; `frames(deadline,
    function, *args)` yields the (frame index, (H, W, 3) uint8) items of a generator
    function such as `landmarks.frames.read_frames`, each frame a copy owned by the caller.
    Exceptions raised by the function are raised here. `deadline` is a `time.monotonic()`
    time (None: no limit): the functions of `landmarks.frames` check it themselves between
    frames (DecodeTimeout, the child kept), and a child that has not answered HARD_GRACE
    seconds after it is killed (DecodeTimeout: a call that does not return). The functions are passed by reference (module and name), so they must be
    importable in the child, which gets this process's `sys.path`.

    `start()` starts the child (~0.3 s) where no input's time is counted (when a worker is
    set up); a call finding no child starts one first. After a timeout or a crash a fresh
    child is started at once, so the next input's time is not spent on it. `close()` ends
    it. Not thread-safe: one per thread.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._memory: int = -1
        self._view: mmap.mmap | None = None
        self._streams = count()
        self._abandoned: list[int] = []   # streams the caller stopped reading: closed in the child at the next call

    def call(self, deadline: float | None, function: Callable[..., Any], *args) -> Any:
        """`function(*args)`, run in the child within `deadline`."""
        return self._ask(deadline, ("call", function, args), f"in {function.__name__}")

    def frames(self, deadline: float | None, function: Callable[..., Iterator[tuple[int, np.ndarray]]],
               *args) -> Iterator[tuple[int, np.ndarray]]:
        """The items of generator `function(*args)`, run in the child; each frame must
        arrive before `deadline`."""
        stream = next(self._streams)
        self._ask(deadline, ("open", stream, function, args), f"opening {function.__name__}")
        frames, done = 0, False
        try:
            while True:
                reply = self._ask(deadline, ("next", stream), f"after {frames} frames of {function.__name__}")
                if reply is None:
                    done = True
                    return
                index, shape = reply
                frames += 1
                yield index, self._frame(shape)
        finally:
            if not done:   # the caller stopped early (or this runs at garbage collection: no I/O here)
                self._abandoned.append(stream)

    def start(self) -> None:
        """Start the child unless it runs, and wait until it is ready (DecoderUnavailable
        when it cannot start)."""
        if self._child is not None:
            return
        ours, theirs = socket.socketpair()
        self._memory = _memory_file()
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-c", _START, str(theirs.fileno()), str(self._memory)],
                pass_fds=(theirs.fileno(), self._memory), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        except OSError as error:
            ours.close()
            self._stop()
            raise DecoderUnavailable(f"cannot start a decoding process: {error}") from error
        finally:
            theirs.close()
        self._connection = Connection(ours.detach())
        try:
            ready = self._connection.poll(_START_LIMIT) and self._connection.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._stop()
            raise DecoderUnavailable(f"the decoding process did not start within {_START_LIMIT:.0f} s "
                                     f"(exit status {code})")

    def close(self) -> None:
        """End the child (if any) and free the shared buffer."""
        self._stop()

    def __enter__(self) -> DecoderProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ask(self, deadline: float | None, request: tuple, where: str) -> Any:
        self.start()
        try:
            while self._abandoned:
                self._connection.send(("close", self._abandoned.pop()))
            self._connection.send(request)
            wait = None if deadline is None else max(0.0, deadline + HARD_GRACE - time.monotonic())
            answered = self._connection.poll(wait)
            if answered:
                status, value = self._connection.recv()
        except (EOFError, OSError) as error:
            code = self._stop()
            self.start()
            raise DecoderCrashed(f"the decoding process died {where}" + _status(code)) from error
        except BaseException:   # e.g. KeyboardInterrupt while waiting: the child's state is unknown
            self._stop()
            raise
        if not answered:
            self._stop()
            self.start()
            raise DecodeTimeout(f"time limit reached {where}: no answer from the decoding process (stopped)")
        if status == "error":
            raise value
        return value

    def _frame(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        if self._view is None or len(self._view) < size:
            if self._view is not None:
                self._view.close()
            self._view = mmap.mmap(self._memory, os.fstat(self._memory).st_size, access=mmap.ACCESS_READ)
        return np.frombuffer(self._view, np.uint8, size).reshape(shape).copy()

    def _stop(self) -> int | None:
        """Kill the child (if running), free the buffer; the child's exit status
        (negative: the signal that ended it), None when there was none."""
        code = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            code = self._child.wait()
            self._child = None
        if self._view is not None:
            self._view.close()
            self._view = None
        if self._memory >= 0:
            os.close(self._memory)
            self._memory = -1
        self._abandoned.clear()
        return code

    def __del__(self):
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _status(code: int | None) -> str:
    if code is None:
        return ""
    return f" (signal {-code})" if code < 0 else f" (exit status {code})"


def _memory_file() -> int:
    """A file descriptor of an anonymous memory file (Linux memfd; elsewhere an unlinked
    temporary file), sized for a first frame."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("forgery-frames", 0)
    else:
        handle, path = tempfile.mkstemp(prefix="forgery-frames-")
        os.unlink(path)
        fd = handle
    os.ftruncate(fd, _INITIAL_BUFFER)
    return fd


# ---- child side -------------------------------------------------------------------------

class _Buffer:
    """The child's side of the shared frame buffer: grows the memory file as needed."""

    def __init__(self, fd: int):
        self._fd = fd
        self._view = mmap.mmap(fd, os.fstat(fd).st_size)

    def write(self, frame: np.ndarray) -> tuple[int, ...]:
        frame = np.ascontiguousarray(frame, np.uint8)
        if frame.nbytes > len(self._view):
            self._view.close()
            os.ftruncate(self._fd, frame.nbytes)
            self._view = mmap.mmap(self._fd, frame.nbytes)
        np.frombuffer(self._view, np.uint8, frame.nbytes)[:] = frame.reshape(-1)
        return frame.shape


def _leave_when_orphaned(parent: int) -> None:
    """End this process once its parent is gone, even while a call is blocked."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve(socket_fd: int, memory_fd: int) -> None:
    """The child's loop: answer the parent's requests until it closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle; it ends this process
    if not os.environ.get(VERBOSE_ENV):
        # What the decoders log (FFmpeg's threads too, after a call has returned) goes nowhere:
        # every failure reaches the caller as an exception.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    threading.Thread(target=_leave_when_orphaned, args=(os.getppid(),), daemon=True).start()
    connection = Connection(socket_fd)
    buffer = _Buffer(memory_fd)
    streams: dict[int, Iterator] = {}
    connection.send("ready")
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        except Exception as error:  # noqa: BLE001 - e.g. a function the child cannot import: the caller's bug
            connection.send(("error", RuntimeError(f"the decoding process cannot take the call: {error!r}")))
            continue
        kind = request[0]
        if kind == "close":
            generator = streams.pop(request[1], None)
            if generator is not None:
                generator.close()
            continue
        try:
            if kind == "call":
                reply = ("value", request[1](*request[2]))
            elif kind == "open":
                streams[request[1]] = iter(request[2](*request[3]))
                reply = ("value", None)
            else:
                try:
                    index, frame = next(streams[request[1]])
                except StopIteration:
                    streams.pop(request[1], None)
                    reply = ("value", None)
                else:
                    reply = ("value", (index, buffer.write(frame)))
        except Exception as error:  # noqa: BLE001 - any error of the call is the caller's to handle
            if kind == "next":
                streams.pop(request[1], None)
            reply = ("error", error)
        try:
            connection.send(reply)
        except Exception as error:  # noqa: BLE001 - a result or error that does not pickle
            connection.send(("error", DecodeError(f"{type(error).__name__}: {error}")))
