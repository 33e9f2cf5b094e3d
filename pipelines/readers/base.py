"""What every dataset reader shares: options, the listing it returns, input errors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from landmarks.frames import media_kind
from pipelines.records import Source, failure

SPLITS = ("train", "val", "test")


class InputError(Exception):
    """The input location is missing, empty, or not in the expected layout."""


@dataclass(frozen=True)
class ReaderOptions:
    """dataset: name used in keys (folder reader; default the folder's name).
    identity_from: 'stem' or 'parent' (folder reader).
    split: 'train', 'val', 'test' or 'all' (dataset readers select it; the folder reader
      labels every file with it).
    compression: FF++ quality folder ('raw', 'c23', 'c40').
    methods: manipulation methods to read (default: all present).
    splits_dir: folder holding FF++'s train/val/test.json (default: <root>/splits or <root>).
    """

    dataset: str | None = None
    identity_from: str = "stem"
    split: str = "train"
    compression: str = "c23"
    methods: tuple[str, ...] | None = None
    splits_dir: str | None = None


@dataclass
class Listing:
    """Sources a reader selected, and failure rows for inputs it had to leave out."""

    sources: list[Source] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def real(self) -> list[Source]:
        return [s for s in self.sources if s.kind == "real"]

    def manipulated(self) -> list[Source]:
        return [s for s in self.sources if s.kind == "manipulated"]

    def skip(self, path: str, reason: str, detail: str = "") -> None:
        self.skipped.append(failure(path, "read", reason, detail=detail))


def selects(split: str, requested: str) -> bool:
    """Whether a video of `split` belongs in a run that asked for `requested`."""
    return requested == "all" or split == requested


def require_dir(path: str, what: str, hint: str = "") -> str:
    """`path` if it is a folder, else an InputError naming it."""
    if not os.path.isdir(path):
        raise InputError(f"{what} not found: {path}" + (f". {hint}" if hint else ""))
    return path


def list_media(root: str) -> list[str]:
    """Video and image files below `root`, sorted; symlinked folders are not followed, so a
    link loop cannot recurse."""
    require_dir(root, "input folder")
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        found.extend(os.path.join(folder, f) for f in files if media_kind(f))
    return sorted(found)


def videos_in(folder: str) -> list[str]:
    """`*.mp4` files directly in `folder`, sorted."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(".mp4"))
