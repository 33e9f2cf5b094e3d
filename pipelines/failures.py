"""Why something was left out, and the run-level errors: the one module that defines them.

Inside a pipeline a failure is data: a row of `failures.parquet` made from a `Reason`
(stage + name) by `failure_row`; nothing matches on exception text. A problem with the run
as a whole (bad options, an output folder that cannot be used, nothing usable) is a
`RunError` raised in the launching process; the `beam` command maps each type to a
one-line message and an exit status.

`--fail-fast` is read in one place, `stop_if_fail_fast`: the first failure row of a
fail-fast run is written into a hidden folder of the run's output (`FAIL_FAST_FOLDER`,
through Beam FileSystems, so the launching process learns it whatever process or machine
the worker was, on any runner) and raised as `InputFailure`.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """A failure reason: the stage it happened in and a snake_case name."""

    stage: str
    name: str
    description: str = ""

    def __str__(self) -> str:
        return f"{self.stage}/{self.name}"


REASONS: dict[str, Reason] = {}


def _reason(stage: str, name: str, description: str) -> Reason:
    reason = Reason(stage, name, description)
    REASONS[str(reason)] = reason
    return reason


# read: listing and opening inputs
UNSUPPORTED_TYPE = _reason("read", "unsupported_type", "not a video or image extension")
UNREADABLE = _reason("read", "unreadable", "no read permission, a dangling link, or an I/O error")
NOT_REGULAR_FILE = _reason("read", "not_regular_file", "a FIFO, device, socket or other non-regular file")
LINK_LOOP = _reason("read", "link_loop", "a linked folder that leads back to a folder already listed")
HIDDEN = _reason("read", "hidden", "a hidden folder or media file (its name starts with '.', as thumbnail folders and "
                                   "macOS '._' files do): left out, as shell patterns leave it")
NAME_NOT_UTF8 = _reason("read", "name_not_utf8", "a file or folder name that is not UTF-8 text (the row shows its "
                                                 "bytes as \\xNN): tables and keys hold text; rename it")
DUPLICATE_CONTENT = _reason("read", "duplicate_content", "the same bytes as another input (kept once)")
FILE_TOO_LARGE = _reason("read", "file_too_large", "an image file larger than the byte limit")
NOT_IN_ANY_SPLIT = _reason("read", "not_in_any_split", "FF++: id in none of the split files")
ORIGINAL_MISSING = _reason("read", "original_missing", "a fake whose original video is absent")
UNEXPECTED_NAME = _reason("read", "unexpected_name", "a dataset file not named as the dataset names it")
IDENTITY_IN_TEST_SPLIT = _reason("read", "identity_in_test_split",
                                 "Celeb-DF: a training video of an identity of the test split")
# decode: turning bytes into frames
UNDECODABLE = _reason("decode", "undecodable", "no frame could be decoded")
TRUNCATED = _reason("decode", "truncated", "the stream ended before the header's frame count")
TOO_MANY_PIXELS = _reason("decode", "too_many_pixels", "an image above the pixel limit")
TIMEOUT = _reason("decode", "timeout", "the input took longer than --input-timeout")
DECODER_CRASHED = _reason("decode", "decoder_crashed",
                          "the decoding process died on this input (a crash in FFmpeg or a codec, or out of memory)")
MASK_FRAME_MISSING = _reason("decode", "mask_frame_missing", "the mask video lacks a frame")
# detect: faces in a frame
NO_FACE = _reason("detect", "no_face", "no face detected in the frame")
LOW_SCORE = _reason("detect", "low_score", "detector confidence below --min-score")
FACE_TOO_SMALL = _reason("detect", "face_too_small", "face box below --min-face-size")
NO_LANDMARKS = _reason("detect", "no_landmarks", "the face mesh found no face in the box")
IMPLAUSIBLE_LANDMARKS = _reason("detect", "implausible_landmarks", "mesh eyes far from the detector's eyes")
# pair: originals and fakes, blends
NO_NEIGHBOUR = _reason("pair", "no_neighbour", "no face of another video and identity to blend with")
SIZE_MISMATCH = _reason("pair", "size_mismatch", "a fake whose frame size differs from its original's")
FRAME_COUNT_MISMATCH = _reason("pair", "frame_count_mismatch",
                               "a fake with fewer decodable frames than its original (used: the common frames)")
ORIGINAL_UNUSABLE = _reason("pair", "original_unusable", "a fake whose original could not be read or decoded")
NO_ORIGINAL_FACE = _reason("pair", "no_original_face", "a fake whose original has no usable face at the sampled frames")
IDENTICAL_TO_ORIGINAL = _reason("pair", "identical_to_original", "a fake with the same bytes as its original")


def reason_of(stage: str | Reason, name: str | None = None) -> Reason:
    """The Reason for `stage` given as a Reason, or as 'stage' + `name`; KeyError for an
    unknown one (every reason is defined above)."""
    if isinstance(stage, Reason):
        return stage
    return REASONS[f"{stage}/{name}"]


def failure_row(path: str, reason: Reason, frame: int = -1, detail: str = "") -> dict:
    """A row of the `failures` table. A path or detail holding bytes that are not UTF-8 (a
    local name decoded with surrogate escapes) is kept as text, those bytes as '\\xNN'."""
    return {"path": as_text(path), "stage": reason.stage, "reason": reason.name, "frame": frame,
            "detail": as_text(detail)}


def as_text(name: str) -> str:
    """`name` as valid UTF-8 text: a name read from the file system with undecodable bytes
    (Python's surrogate escapes) has those bytes written as '\\xNN'."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:   # a surrogate that no decoding escaped
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def reason_counts(rows) -> dict[str, int]:
    """{reason name: rows} of failure rows, sorted by name."""
    return dict(sorted(Counter(r["reason"] for r in rows).items()))


# ---- run-level errors (launching process) --------------------------------------------

class RunError(Exception):
    """A problem with the run as a whole; `exit_code` is the command's exit status."""

    exit_code = 1


class InputError(RunError):
    """The input location is missing, empty, or not in the expected layout; or the options
    do not fit it."""

    exit_code = 2


class MissingOutputError(RunError):
    """A run ended without an output its plan names (a runner skipped work)."""


class OutputError(RunError):
    """The output location cannot be used: a file, read-only, or holding files that are
    not this project's."""

    exit_code = 2


class OutputExistsError(OutputError):
    """The output folder already holds a previous run's files (and neither --resume nor
    --overwrite was given)."""


class ResumeMismatchError(OutputError):
    """--resume on an output made with other inputs, seed, options or version."""


class NothingUsableError(RunError):
    """The run finished but produced nothing usable (no face, no sample, no blend)."""


class PipelineError(RunError):
    """The pipeline failed for a reason other than an input (the cause is chained)."""


class InputFailure(RunError):
    """--fail-fast: the first input, frame or face that would have been dropped."""

    def __init__(self, row: dict):
        self.row = row
        where = f" at frame {row['frame']}" if row.get("frame", -1) >= 0 else ""
        detail = f": {row['detail']}" if row.get("detail") else ""
        super().__init__(f"{row['path']}: {row['stage']}/{row['reason']}{where}{detail}")


FAIL_FAST_FOLDER = ".fail-fast"
"""Hidden folder of a run's output folder where a fail-fast worker leaves the failing row
(a file of the run's own: removed by the launcher after reading it)."""


@dataclass(frozen=True)
class FailFast:
    """--fail-fast: the first input, frame or face that would be dropped stops the run.
    folder: where the worker that finds it leaves its row for the launching process (local
    path or URL, `fail_fast_folder` of the run's output); "" in the launching process
    itself, which raises at once."""

    folder: str = ""


def fail_fast_folder(output: str) -> str:
    """The fail-fast folder of the run whose output folder (local path or URL) is `output`."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output, FAIL_FAST_FOLDER)


def stop_if_fail_fast(row: dict, fail_fast: FailFast | None) -> dict:
    """`row`; with `fail_fast`, an InputFailure for it instead, the row first written whole
    (then renamed) into `fail_fast.folder` when there is one."""
    if fail_fast is None:
        return row
    if fail_fast.folder:
        from pipelines.write import write_atomically

        data = json.dumps(row, sort_keys=True).encode()
        try:
            write_atomically(fail_fast.folder, f"{uuid.uuid4().hex}.json", lambda stream: stream.write(data))
        except Exception:  # noqa: BLE001 - any file system's error: the launcher then reports the failure generically
            pass
    raise InputFailure(row)


def fail_fast_rows(folder: str) -> list[dict]:
    """Rows fail-fast workers left in `folder` (local path or URL), sorted by path and
    frame; [] when there are none."""
    from apache_beam.io.filesystems import FileSystems

    rows = []
    try:
        found = FileSystems.match([FileSystems.join(folder, "*.json")])[0].metadata_list
    except Exception:  # noqa: BLE001 - no folder (nothing failed fast), or one that cannot be listed
        return []
    for metadata in sorted(found, key=lambda m: m.path):
        try:
            with FileSystems.open(metadata.path) as stream:
                rows.append(json.loads(stream.read()))
        except (OSError, ValueError):
            continue
    return sorted(rows, key=lambda r: (r["path"], r.get("frame", -1)))
