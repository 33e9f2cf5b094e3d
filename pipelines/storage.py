"""Where inputs lie: a local folder or a URL (gs://, s3://, hdfs://, ...), behind one set of
calls. The readers list, test and read through here; workers open `join(root, relative)`.

Local paths keep the safe walk: only regular files are listed, FIFOs and devices are never
opened, linked folders are followed once each. URLs go through Beam `FileSystems` with
object-store semantics: there are no folders, a "folder" exists when some object lies
below its prefix, and a listing is by prefix.
"""
from __future__ import annotations

import glob
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems

from landmarks.frames import media_kind
from pipelines.failures import (HIDDEN, LINK_LOOP, NAME_NOT_UTF8, NOT_REGULAR_FILE, UNREADABLE, UNSUPPORTED_TYPE,
                                InputError, as_text, failure_row)

__all__ = ["MediaListing", "content_hash", "files_in", "is_file", "is_folder", "is_url", "join", "list_media",
           "matching", "name_of", "open_binary", "read_text", "root_of"]


def is_url(path: str) -> bool:
    """Whether `path` is a URL (scheme://...) rather than a local path."""
    return "://" in path


def root_of(root: str) -> str:
    """The canonical form of an input or output root: a URL without its trailing '/', a
    local folder as an absolute path (workers may run in another directory: a relative
    path would name another folder there)."""
    return root.rstrip("/") if is_url(root) else os.path.abspath(root)


def join(root: str, *relative: str) -> str:
    """`root` joined with '/'-separated relative parts: a local path or a URL."""
    if is_url(root):
        return FileSystems.join(root, *relative)
    return os.path.join(root, *(part for r in relative for part in r.split("/") if part))


def name_of(root: str) -> str:
    """The last component of a folder or URL ('' for a bucket root or '/')."""
    return PurePosixPath(root.split("://", 1)[-1].rstrip("/")).name if is_url(root) else os.path.basename(root)


def _remote(action: str, path: str, call):
    try:
        return call()
    except BeamIOError as error:
        causes = "; ".join(f"{type(e).__name__}: {e}" for e in (error.exception_details or {}).values())
        raise InputError(f"cannot {action} {path}: {causes or error}") from error


def matching(folder: str, pattern: str, limit: int | None = None) -> list[FileMetadata]:
    """The files below `folder` whose path relative to it matches the glob `pattern` ('*'
    within a name, '**' across names), at most `limit`; the folder's own name is literal,
    glob characters included (a bucket prefix or a folder may be named 'data[2024]'). A
    local folder is globbed, never its parent walked. Raises BeamIOError (a URL) or OSError."""
    if is_url(folder):
        return FileSystems.match([FileSystems.join(glob.escape(folder), pattern)], [limit])[0].metadata_list
    found = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), pattern), recursive=True, include_hidden=True)):
        if os.path.isfile(path) and (limit is None or len(found) < limit):
            found.append(FileMetadata(path, os.path.getsize(path), os.path.getmtime(path)))
    return found


def _objects(folder: str, pattern: str, limit: int | None = None) -> list[FileMetadata]:
    return _remote("list", folder, lambda: matching(folder, pattern, limit))


def is_folder(path: str) -> bool:
    """A local folder; for a URL, whether any object lies below `path`/."""
    if not is_url(path):
        return os.path.isdir(path)
    return bool(_objects(path, "**", 1))


def is_file(path: str) -> bool:
    """A local file (links followed); for a URL, an object named exactly `path`."""
    if not is_url(path):
        return os.path.isfile(path)
    return _remote("check", path, lambda: FileSystems.exists(path))


def files_in(folder: str, suffix: str) -> list[str]:
    """Names of the files directly in `folder` ending in `suffix` (case-insensitive),
    sorted; none when `folder` does not exist. Local sub-folders are not files."""
    if is_url(folder):
        prefix = folder.rstrip("/") + "/"
        names = (m.path[len(prefix):] for m in _objects(folder, "*") if m.path.startswith(prefix))
    elif os.path.isdir(folder):
        names = (n for n in os.listdir(folder) if not os.path.isdir(os.path.join(folder, n)))
    else:
        return []
    return sorted(n for n in names if n and "/" not in n and n.lower().endswith(suffix.lower()))


def open_binary(path: str) -> BinaryIO:
    """`path` opened for reading bytes (no decompression by extension)."""
    if not is_url(path):
        return open(path, "rb")
    return _remote("open", path, lambda: FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))


def read_text(path: str) -> str:
    """A small UTF-8 text file (a split file, a test list)."""
    with open_binary(path) as stream:
        return stream.read().decode("utf-8")


def content_hash(path: str) -> str | None:
    """A 128-bit hash of the bytes of `path`; None when it cannot be read."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open_binary(path) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (OSError, InputError):
        return None
    return digest.hexdigest()


@dataclass
class MediaListing:
    """Files found below a root: media paths relative to it ('/'-separated, sorted; each a
    regular file or a link to one), their sizes in bytes where known, and failure rows (paths
    relative too) for what was found but not listed."""

    paths: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)

    def add(self, relative: str, size: int | None) -> None:
        if not media_kind(relative):
            self.skipped.append(failure_row(relative, UNSUPPORTED_TYPE, detail="not a video or image extension"))
        elif _hidden(relative):
            self.skipped.append(failure_row(relative, HIDDEN, detail="a hidden file, or one in a hidden folder"))
        else:
            self.paths.append(relative)
            if size is not None:
                self.sizes[relative] = size


def _hidden(relative: str) -> bool:
    """Whether a '/'-separated relative path has a component starting with '.'."""
    return any(part.startswith(".") for part in relative.split("/"))


def list_media(root: str) -> MediaListing:
    """Video and image files below `root` (see `MediaListing`); a file without a video or
    image extension is a `read/unsupported_type` row, a hidden media file (a name, or a
    folder of its path, starting with '.') a `read/hidden` row. A URL is listed by prefix.
    A local folder is walked: linked folders are followed once each (by their real path: a
    link back to a folder already listed is a `read/link_loop` row, never a second
    listing); a hidden folder is one `read/hidden` row, not walked; a name that is not
    UTF-8 text is a `read/name_not_utf8` row (a folder not walked); a FIFO, device or
    socket is never opened (`read/not_regular_file`); a dangling link to a media name is
    listed (it becomes a `read/unreadable` row when read)."""
    found = MediaListing()
    if is_url(root):
        prefix = root.rstrip("/") + "/"
        for meta in _objects(root, "**"):
            relative = meta.path[len(prefix):] if meta.path.startswith(prefix) else ""
            if relative and not relative.endswith("/"):   # "folder" placeholder objects end in '/'
                found.add(relative, meta.size_in_bytes)
        found.paths.sort()
        return found
    if not os.path.isdir(root):
        raise InputError(f"input folder not found: {root}")
    listed = {os.path.realpath(root): "."}   # real path -> where it was listed (relative)

    def walk(folder: str, relative: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            found.skipped.append(failure_row(relative or ".", UNREADABLE,
                                             detail=f"folder: {type(error).__name__}: {error.strerror or error}"))
            return
        for entry in entries:
            path, name = entry.path, f"{relative}{entry.name}"
            if as_text(entry.name) != entry.name:
                found.skipped.append(failure_row(name, NAME_NOT_UTF8, detail="rename it to UTF-8 text to read it"))
                continue
            try:
                info = os.stat(path)  # follows links
            except OSError:
                if media_kind(name):
                    found.add(name, None)  # dangling link or unreadable: a row when read
                else:
                    found.skipped.append(failure_row(name, UNREADABLE, detail="a dangling link or unreadable entry"))
                continue
            if stat.S_ISDIR(info.st_mode):
                if entry.name.startswith("."):
                    found.skipped.append(failure_row(name, HIDDEN, detail="a hidden folder: not read"))
                    continue
                real = os.path.realpath(path)
                if real in listed:
                    found.skipped.append(failure_row(name, LINK_LOOP, detail=f"leads to {listed[real]!r}, "
                                                                             f"already listed"))
                    continue
                listed[real] = name
                walk(path, name + "/")
            elif not stat.S_ISREG(info.st_mode):
                found.skipped.append(failure_row(name, NOT_REGULAR_FILE, detail="not a regular file: never opened"))
            else:
                found.add(name, info.st_size)

    walk(root, "")
    found.paths.sort()
    return found
