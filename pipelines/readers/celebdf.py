"""Celeb-DF (v1 and v2) as distributed.

    <root>/Celeb-real/id<A>_<clip>.mp4          real, celebrity A
    <root>/YouTube-real/<n>.mp4                 real, one unnamed person per video
    <root>/Celeb-synthesis/id<A>_id<B>_<clip>.mp4   fake: B's face on id<A>_<clip>.mp4
    <root>/List_of_testing_videos.txt           lines '<label> <folder>/<file>.mp4', 1 = real, 0 = fake
    (a `videos/` level beneath each folder is accepted too)

Listed videos are the test split, the rest train; there is no validation split. Celeb-DF
splits by video, not by identity, so to keep every identity in one split, training videos
that show an identity of the test split are left out (each with a failures row).
"""
from __future__ import annotations

import re

from pipelines import storage
from pipelines.readers.base import InputError, Listing, ReaderOptions, selects
from pipelines.records import Source
from shards.keys import sanitize

REAL_FOLDERS = ("Celeb-real", "YouTube-real")
FAKE_FOLDER = "Celeb-synthesis"
TEST_LIST = "List_of_testing_videos.txt"
METHOD = "Celeb-synthesis"
_CELEB = re.compile(r"^id(\d+)_(\d+)$")
_FAKE = re.compile(r"^id(\d+)_id(\d+)_(\d+)$")


def looks_like_celebdf(root: str) -> bool:
    return any(storage.is_folder(storage.join(root, f)) for f in (*REAL_FOLDERS, FAKE_FOLDER)) or \
        storage.is_file(storage.join(root, TEST_LIST))


def _videos(root: str, name: str) -> list[tuple[str, str]]:
    """(relative path, file name) of the videos of folder `name` (in `name/videos/` when
    that holds any, else directly in `name/`), sorted."""
    for folder in (f"{name}/videos", name):
        files = storage.files_in(storage.join(root, folder), ".mp4")
        if files:
            return [(f"{folder}/{file}", file) for file in files]
    return []


def parse_test_list(path: str) -> dict[str, int]:
    """'<folder>/<file>.mp4' -> label (1 real, 0 fake) from List_of_testing_videos.txt (a
    local path or URL)."""
    labels = {}
    try:
        lines = storage.read_text(path).splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not a text file: {error}") from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise InputError(f"{path}:{number}: expected '<1 real | 0 fake> <folder>/<file>.mp4', got {line.strip()!r}")
        name = parts[1].replace("\\", "/")
        if ".." in name.split("/") or name.startswith("/"):
            raise InputError(f"{path}:{number}: path {name!r} leaves the dataset folder")
        labels[name] = int(parts[0])
    return labels


def _identities(folder: str, stem: str) -> tuple[str, ...]:
    """Identities shown in a video: ('id<A>',) for Celeb-real, ('yt<n>',) for YouTube-real,
    ('id<A>', 'id<B>') for a synthesis (background A, face B)."""
    if folder == FAKE_FOLDER:
        a, b, _ = _FAKE.match(stem).groups()
        return f"id{a}", f"id{b}"
    if folder == "Celeb-real":
        return (f"id{_CELEB.match(stem).group(1)}",)
    return (f"yt{stem}",)


def read_celebdf(root: str, options: ReaderOptions) -> Listing:
    """Real and synthesised Celeb-DF videos of `options.split` ('train', 'test' or 'all'),
    read from a local folder or a URL; source paths are relative to `root`."""
    if options.split == "val":
        raise InputError("Celeb-DF has no validation split: use --split train, test or all")
    root = storage.root_of(root)
    test_list = storage.join(root, TEST_LIST)
    if not storage.is_file(test_list):
        raise InputError(f"Celeb-DF test list not found: {test_list} (it ships with the dataset)")
    labels = parse_test_list(test_list)
    listing = Listing()
    videos = []  # (folder name, stem, path, identities, split)
    for name in (*REAL_FOLDERS, FAKE_FOLDER):
        pattern = _FAKE if name == FAKE_FOLDER else _CELEB if name == "Celeb-real" else None
        for path, file in _videos(root, name):
            stem = file[:-4]
            if pattern and not pattern.match(stem):
                listing.skip(path, "unexpected_name", f"{name} videos are named like {pattern.pattern}")
                continue
            label = labels.get(f"{name}/{file}")
            if label is not None and label != (0 if name == FAKE_FOLDER else 1):
                raise InputError(f"{test_list} labels {name}/{file} as {'real' if label else 'fake'}")
            videos.append((name, stem, path, _identities(name, stem), "test" if label is not None else "train"))
    if not videos:
        raise InputError(f"no Celeb-DF videos found in {', '.join(REAL_FOLDERS + (FAKE_FOLDER,))} under {root}")

    test_identities = {i for _, _, _, identities, split in videos if split == "test" for i in identities}
    real_paths = {(n, s): p for n, s, p, _, _ in videos if n != FAKE_FOLDER}
    for name, stem, path, identities, split in videos:
        if split == "train" and test_identities.intersection(identities):
            listing.skip(path, "identity_in_test_split",
                         f"{'/'.join(sorted(test_identities.intersection(identities)))} appears in the test list")
            continue
        if not selects(split, options.split):
            continue
        common = dict(path=path, dataset="celebdf", video=sanitize(f"{name}-{stem}"),
                      identity=identities[0], split=split, root=root)
        if name != FAKE_FOLDER:
            listing.sources.append(Source(**common))
            continue
        a, _, clip = _FAKE.match(stem).groups()
        original = real_paths.get(("Celeb-real", f"id{a}_{clip}"))
        if original is None:
            listing.skip(path, "original_missing", f"Celeb-real/id{a}_{clip}.mp4 not found")
            continue
        listing.sources.append(Source(**common, kind="manipulated", method=METHOD,
                                      original=original))
    return listing
