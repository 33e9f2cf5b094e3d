"""Dataset readers: an input location -> `Listing` of sources. Pluggable by name."""
from __future__ import annotations

from collections.abc import Callable

from pipelines.readers.base import InputError, Listing, ReaderOptions
from pipelines.readers.celebdf import looks_like_celebdf, read_celebdf
from pipelines.readers.ffpp import looks_like_ffpp, read_ffpp
from pipelines.readers.folder import demo_sources, read_folder

READERS: dict[str, Callable[[str, ReaderOptions], Listing]] = {
    "ffpp": read_ffpp,
    "celebdf": read_celebdf,
    "folder": read_folder,
}
"""Readers by name: (input root, options) -> Listing."""


def detect_layout(root: str) -> str:
    """'ffpp', 'celebdf' or 'folder', from the folders found at `root`."""
    if looks_like_ffpp(root):
        return "ffpp"
    if looks_like_celebdf(root):
        return "celebdf"
    return "folder"


def read_sources(root: str, layout: str | None, options: ReaderOptions) -> tuple[str, Listing]:
    """(layout used, listing) for `root`; `layout` None means auto-detect."""
    layout = layout or detect_layout(root)
    return layout, READERS[layout](root, options)


__all__ = ["READERS", "InputError", "Listing", "ReaderOptions", "demo_sources", "detect_layout", "read_sources"]
