"""Readers: turn an input location into `Source` records. Pluggable by name (`READERS`)."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from landmarks.frames import media_kind
from pipelines.records import Source
from shards.keys import sanitize


class InputError(Exception):
    """The input location is missing, empty, or not in the expected layout."""


@dataclass(frozen=True)
class ReaderOptions:
    """identity_from: 'stem' (file name without extension) or 'parent' (the folder that
    holds the file, as in `photos/<identity>/*.jpg`). split: split given to every source."""

    dataset: str | None = None
    identity_from: str = "stem"
    split: str = "train"


def list_media(root: str) -> list[str]:
    """Video and image files below `root`, sorted; symlinked folders are not followed, so a
    link loop cannot recurse."""
    if not os.path.isdir(root):
        raise InputError(f"input folder not found: {root}")
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        found.extend(os.path.join(folder, f) for f in files if media_kind(f))
    return sorted(found)


def folder_sources(root: str, options: ReaderOptions) -> list[Source]:
    """Every video and image below `root` as a real source.

    video id: path relative to `root` without extension; identity: file stem or parent
    folder name (see ReaderOptions).
    """
    if options.identity_from not in ("stem", "parent"):
        raise InputError(f"identity_from must be 'stem' or 'parent', got {options.identity_from!r}")
    paths = list_media(root)
    if not paths:
        raise InputError(f"no videos or images (by extension) found below {root}")
    dataset = sanitize(options.dataset or Path(os.path.abspath(root)).name)
    sources = []
    for path in paths:
        relative = Path(os.path.relpath(path, root))
        identity = relative.parent.name if options.identity_from == "parent" else relative.stem
        sources.append(Source(path=os.path.abspath(path), dataset=dataset,
                              video=sanitize(relative.with_suffix("").as_posix().replace("/", "-")),
                              identity=identity or relative.stem, split=options.split))
    return sources


def demo_sources() -> list[Source]:
    """The embedded demo: two public-domain portraits shipped inside installed packages,
    scikit-image's astronaut (Eileen Collins) and matplotlib's Grace Hopper."""
    import matplotlib
    import skimage

    files = {
        "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
        "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise InputError(f"demo images missing from the installed packages: {missing}")
    return [Source(path=str(path), dataset="demo", video=name, identity=name)
            for name, path in files.items()]


READERS: dict[str, Callable[[str, ReaderOptions], list[Source]]] = {
    "folder": folder_sources,
}
"""Dataset readers by name: (input root, options) -> sources."""
