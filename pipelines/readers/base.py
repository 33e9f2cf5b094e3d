"""What every dataset reader shares: options, the listing it returns, input errors."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines import storage
from pipelines.failures import DUPLICATE_CONTENT, IDENTICAL_TO_ORIGINAL, InputError, Reason, failure_row, reason_of
from pipelines.records import Source

SPLITS = ("train", "val", "test")
__all__ = ["InputError", "Listing", "ReaderOptions", "SPLITS", "drop_duplicate_content"]


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
        """A failure row for an input left out; `path` relative to the input root."""
        self.skipped.append(failure_row(path, reason_of("read", reason) if isinstance(reason, str) else reason,
                                        detail=detail))


def selects(split: str, requested: str) -> bool:
    """Whether a video of `split` belongs in a run that asked for `requested`."""
    return requested == "all" or split == requested


def require_dir(path: str, what: str, hint: str = "") -> str:
    """`path` if it is a folder (for a URL: something lies below it), else an InputError naming it."""
    if not storage.is_folder(path):
        raise InputError(f"{what} not found: {path}" + (f". {hint}" if hint else ""))
    return path


def duplicate_groups(paths: list[str], sizes: dict[str, int], locate: Callable[[str], str]) -> dict[str, str]:
    """{path: first path with the same bytes} for every path whose content equals an
    earlier one's in `paths` order. Only files of equal known size (`sizes`, bytes; empty
    files left out) are read, each at `locate(path)` (a local path or URL)."""
    by_size: dict[int, list[str]] = {}
    for path in paths:
        if sizes.get(path):
            by_size.setdefault(sizes[path], []).append(path)
    first_of: dict[str, str] = {}
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        seen: dict[str, str] = {}
        for path in same_size:
            digest = storage.content_hash(locate(path))
            if digest is None:
                continue
            if digest in seen:
                first_of[path] = seen[digest]
            else:
                seen[digest] = path
    return first_of


def drop_duplicate_content(listing: Listing, sizes: dict[str, int]) -> Listing:
    """`listing` without sources whose bytes equal an earlier source's (real sources first,
    then manipulated ones, each in path order; `sizes`: bytes by source path): a duplicate
    would become a second identity of the same face, or a 'fake' identical to its original.
    Each gets a `read/duplicate_content` row naming the one kept."""
    ordered = sorted(listing.sources, key=lambda s: (s.kind != "real", s.path))
    locations = {s.path: s.location for s in ordered}
    first_of = duplicate_groups([s.path for s in ordered], sizes, locations.__getitem__)
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
