"""Once-per-process set-up of a pipeline worker: its log verbosity, BLAS thread pool,
garbage collector, face detector and decoding process.

Called from `setup` of every DoFn that does numeric work. It acts on the whole process, so
it holds on any runner whatever stages a worker process is given, and however often the
runner sets a DoFn up (Beam's DaskRunner does it once per partition, not per process). It
takes what it needs from the DoFn's configuration: a worker on another machine (Dataflow,
a Dask cluster) does not share the launching process's environment.
"""
from __future__ import annotations

import atexit
import gc
import os
import threading

from threadpoolctl import threadpool_limits

from landmarks.decoder import DecoderProcess
from landmarks.detect import DetectorConfig, FaceDetector
from landmarks.frames import VERBOSE_ENV

_DETECTORS: dict[tuple[DetectorConfig, int], FaceDetector] = {}
"""This process's face detectors, by configuration and thread."""
_DECODERS: dict[tuple[int, str | None], DecoderProcess] = {}
"""This process's decoding processes, by thread and verbosity."""


def set_worker_verbosity(verbose: bool) -> None:
    """`beam -v` in this worker process: native libraries' log lines (FFmpeg, MediaPipe)
    are shown when `verbose`, silenced otherwise (`landmarks.frames.quiet_native_logs`
    reads it, in this process and in the decoding processes it starts). Call it before
    the face detector is made."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def shared_detector(config: DetectorConfig) -> FaceDetector:
    """The calling thread's FaceDetector for `config`: made on first use (the MediaPipe
    graphs take ~0.1 s and ~50 MB to load), then kept for the life of the process. One per
    thread because a MediaPipe graph must not run in two threads at once."""
    key = (config, threading.get_ident())
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(config)
    return _DETECTORS[key]


def shared_decoder() -> DecoderProcess:
    """The calling thread's decoding process (`landmarks.decoder`): started on first use,
    before any input's time runs (~0.3 s), then kept for the life of this process. One per
    thread because it answers one call at a time; a new one when the verbosity changed
    (`set_worker_verbosity`), which a decoding process takes from its environment."""
    key = (threading.get_ident(), os.environ.get(VERBOSE_ENV))
    if key not in _DECODERS:
        for other in [k for k in _DECODERS if k[0] == key[0]]:
            _DECODERS.pop(other).close()
        _DECODERS[key] = DecoderProcess()
        _DECODERS[key].start()
    return _DECODERS[key]


@atexit.register
def close_decoders() -> None:
    """End this process's decoding processes (at exit; or for a caller whose next ones must
    start with another environment)."""
    while _DECODERS:
        _DECODERS.popitem()[1].close()


def prepare_worker_process() -> None:
    """Single-threaded BLAS, and the objects alive now kept out of the cyclic collector.

    - BLAS (the OpenBLAS under NumPy and SciPy) gets one thread. Our products are per
      crop (e.g. a 65,536 x 3 weighted mean) and too small to split; an idle OpenBLAS
      thread spin-waits, which on 2 cores took 12 of 54 CPU-s of a one-worker build, and
      with two workers it takes the core the other worker needs. Parallelism comes from
      worker processes instead.
    - `gc.freeze()`: what is alive once a DoFn is set up (modules, MediaPipe graphs, the
      DoFn itself) lives as long as the worker, so the cyclic collector need not walk it
      again: not in each full collection, and not at process exit, which took ~0.9 s per
      worker process (~0.2 s frozen) while the local runner waits for each in turn.

    Each call acts again (a few ms), so a BLAS loaded or objects set up since the last call
    are covered too.
    """
    threadpool_limits(limits=1, user_api="blas")
    gc.freeze()
