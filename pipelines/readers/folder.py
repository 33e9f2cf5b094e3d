"""The generic reader: any folder of videos and images (all real), and the embedded demo."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from landmarks.frames import media_kind
from pipelines.readers.base import InputError, Listing, ReaderOptions, list_media
from pipelines.records import Source
from shards.keys import sanitize


def list_remote_media(root: str) -> list[str]:
    """Video and image files below a URL (gs://, s3://, hdfs://, ...), via Beam FileSystems."""
    from apache_beam.io.filesystems import FileSystems
    matches = FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list
    return sorted(m.path for m in matches if media_kind(m.path))


def read_folder(root: str, options: ReaderOptions) -> Listing:
    """Every video and image below `root` (a folder, or a URL Beam FileSystems can list) as
    a real source of split `options.split`.

    video id: path relative to `root` without extension; identity: file stem or parent
    folder name (see ReaderOptions).
    """
    if options.split == "all":
        raise InputError("a plain folder has no splits: pass --split train|val|test to label it")
    if options.identity_from not in ("stem", "parent"):
        raise InputError(f"identity_from must be 'stem' or 'parent', got {options.identity_from!r}")
    remote = "://" in root
    paths = list_remote_media(root) if remote else [os.path.abspath(p) for p in list_media(root)]
    if not paths:
        raise InputError(f"no videos or images (by extension) found below {root}")
    base = root.rstrip("/") if remote else os.path.abspath(root)
    dataset = sanitize(options.dataset or PurePosixPath(base.split("://")[-1]).name or "input")
    sources = []
    for path in paths:
        relative = PurePosixPath(path[len(base):].lstrip("/"))
        identity = relative.parent.name if options.identity_from == "parent" else relative.stem
        sources.append(Source(path=path, dataset=dataset, video=sanitize(relative.with_suffix("").as_posix().replace("/", "-")),
                              identity=identity or relative.stem, split=options.split))
    return Listing(sources)


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

