"""What every dataset reader shares: options, the listing it returns, input errors."""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field

from landmarks.frames import media_kind
from pipelines.failures import (DUPLICATE_CONTENT, IDENTICAL_TO_ORIGINAL, LINK_LOOP, NOT_REGULAR_FILE, UNREADABLE, UNSUPPORTED_TYPE,
                                InputError, Reason, failure_row, reason_of)
from pipelines.records import Source

SPLITS = ("train", "val", "test")
__all__ = ["InputError", "Listing", "ReaderOptions", "SPLITS", "list_media", "drop_duplicate_content"]


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

    def skip(self, path: str, reason: str | Reason, detail: str = "") -> None:
        self.skipped.append(failure_row(path, reason_of("read", reason) if isinstance(reason, str) else reason,
                                        detail=detail))


def selects(split: str, requested: str) -> bool:
    """Whether a video of `split` belongs in a run that asked for `requested`."""
    return requested == "all" or split == requested


def require_dir(path: str, what: str, hint: str = "") -> str:
    """`path` if it is a folder, else an InputError naming it."""
    if not os.path.isdir(path):
        raise InputError(f"{what} not found: {path}" + (f". {hint}" if hint else ""))
    return path


@dataclass
class MediaListing:
    """Files found below a folder: media paths (sorted, each a regular file or a link to
    one) and failure rows for what was found but not listed."""

    paths: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def list_media(root: str) -> MediaListing:
    """Video and image files below `root`, sorted. Linked folders are followed once each
    (by their real path: a link back to a folder already listed is a `read/link_loop` row,
    never a second listing); a FIFO, device or socket is never opened (`read/not_regular_file`);
    a file without a video or image extension is a `read/unsupported_type` row; a dangling
    link to a media name is listed (it becomes a `read/unreadable` row when read)."""
    require_dir(root, "input folder")
    found = MediaListing()
    visited = {os.path.realpath(root)}

    def walk(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            found.skipped.append(failure_row(folder, UNREADABLE, detail=f"folder: {type(error).__name__}: {error}"))
            return
        for entry in entries:
            path = entry.path
            try:
                info = os.stat(path)  # follows links
            except OSError:
                if media_kind(path):
                    found.paths.append(path)  # dangling link or unreadable: a row when read
                else:
                    found.skipped.append(failure_row(path, UNREADABLE, detail="a dangling link or unreadable entry"))
                continue
            if stat.S_ISDIR(info.st_mode):
                real = os.path.realpath(path)
                if real in visited:
                    found.skipped.append(failure_row(path, LINK_LOOP, detail=f"leads to {real}, already listed"))
                    continue
                visited.add(real)
                walk(path)
            elif not stat.S_ISREG(info.st_mode):
                found.skipped.append(failure_row(path, NOT_REGULAR_FILE, detail="not a regular file: never opened"))
            elif not media_kind(path):
                found.skipped.append(failure_row(path, UNSUPPORTED_TYPE, detail="not a video or image extension"))
            else:
                found.paths.append(path)

    walk(root)
    found.paths.sort()
    return found


def _content_hash(path: str) -> str | None:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _regular_size(path: str) -> int | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size > 0 else None


def duplicate_groups(paths: list[str]) -> dict[str, str]:
    """{path: first path with the same bytes} for every local path whose content equals an
    earlier one's in `paths` order (only files of equal size are hashed)."""
    by_size: dict[int, list[str]] = {}
    for path in paths:
        size = None if "://" in path else _regular_size(path)
        if size is not None:
            by_size.setdefault(size, []).append(path)
    first_of: dict[str, str] = {}
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        seen: dict[str, str] = {}
        for path in same_size:
            digest = _content_hash(path)
            if digest is None:
                continue
            if digest in seen:
                first_of[path] = seen[digest]
            else:
                seen[digest] = path
    return first_of


def drop_duplicate_content(listing: Listing) -> Listing:
    """`listing` without sources whose bytes equal an earlier source's (real sources first,
    then manipulated ones, each in path order): a duplicate would become a second identity
    of the same face, or a 'fake' identical to its original. Each gets a
    `read/duplicate_content` row naming the one kept."""
    ordered = sorted(listing.sources, key=lambda s: (s.kind != "real", s.path))
    first_of = duplicate_groups([s.path for s in ordered])
    kept = []
    for source in listing.sources:
        first = first_of.get(source.path)
        if first is not None:
            reason = IDENTICAL_TO_ORIGINAL if source.kind == "manipulated" and first == source.original \
                else DUPLICATE_CONTENT
            listing.skipped.append(failure_row(source.path, reason, detail=f"same bytes as {first}"))
        else:
            kept.append(source)
    listing.sources = kept
    return listing


def videos_in(folder: str) -> list[str]:
    """`*.mp4` files directly in `folder`, sorted."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(".mp4"))
