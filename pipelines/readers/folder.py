"""The generic reader: any folder of videos and images (all real), and the embedded demo."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from pipelines import storage
from pipelines.failures import reason_counts
from pipelines.readers.base import InputError, Listing, ReaderOptions, drop_duplicate_content
from pipelines.records import Source
from shards.keys import sanitize

_OUTSIDE_KEY = re.compile(r"[^A-Za-z0-9_-]+")


def video_id(relative: str) -> str:
    """Key field of a file at `relative` (posix path below the input root): the path with
    its extension, case preserved, every run of characters outside [A-Za-z0-9_-] (the
    '/' and the '.' included) as one '-', and '__' (the key separator) as '_'.
    'a/clip.MP4' -> 'a-clip-MP4'. Distinct paths can still meet ('a/b.mp4', 'a-b.mp4'):
    `video_ids` tells them apart."""
    return re.sub("_{2,}", "_", _OUTSIDE_KEY.sub("-", relative)).strip("-") or "x"


def video_ids(relatives: list[str]) -> dict[str, str]:
    """{relative path: video id}, unique by construction: paths whose `video_id` meets
    another's each get '-' and 6 hex digits of a hash of their own relative path, which
    depends on nothing else, so an id changes only when a colliding file is added."""
    plain = {r: video_id(r) for r in relatives}
    counts: dict[str, int] = {}
    for vid in plain.values():
        counts[vid] = counts.get(vid, 0) + 1
    ids = {r: (f"{v}-{hashlib.blake2b(r.encode(), digest_size=3).hexdigest()}" if counts[v] > 1 else v)
           for r, v in plain.items()}
    taken: set[str] = set()
    for r in sorted(ids):  # a hashed id that still meets another (vanishingly rare): longer hashes
        vid, length = ids[r], 4
        while vid in taken:
            length += 1
            vid = f"{plain[r]}-{hashlib.blake2b(r.encode(), digest_size=length).hexdigest()}"
        ids[r] = vid
        taken.add(vid)
    return ids


def read_folder(root: str, options: ReaderOptions) -> Listing:
    """Every video and image below `root` (a folder, or a URL Beam FileSystems can list) as
    a real source of split `options.split`.

    video id: `video_ids` of the path relative to `root` (with its extension; unique);
    identity: file stem or parent folder name (see ReaderOptions). Files with the same
    bytes as an earlier one are left out (`read/duplicate_content`), as are links back
    into folders already listed, non-regular files and other extensions (rows).
    """
    if options.split == "all":
        raise InputError("a plain folder has no splits: pass --split train|val|test to label it")
    if options.identity_from not in ("stem", "parent"):
        raise InputError(f"identity_from must be 'stem' or 'parent', got {options.identity_from!r}")
    root = storage.root_of(root)
    media = storage.list_media(root)
    listing = Listing(skipped=list(media.skipped))
    if not media.paths:
        left_out = ", ".join(f"{reason} {count}" for reason, count in reason_counts(listing.skipped).items())
        raise InputError(f"no videos or images (by extension) found below {root}"
                         + (f" (left out: {left_out})" if left_out else ""))
    dataset = sanitize(options.dataset or storage.name_of(root) or "input")
    ids = video_ids(media.paths)
    for path in media.paths:
        relative = PurePosixPath(path)
        identity = relative.parent.name if options.identity_from == "parent" else relative.stem
        listing.sources.append(Source(path=path, dataset=dataset, video=ids[path],
                                      identity=identity or relative.stem, split=options.split, root=root))
    return drop_duplicate_content(listing, media.sizes)


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
    return [Source(path=path.name, dataset="demo", video=name, identity=name, root=str(path.parent))
            for name, path in files.items()]

