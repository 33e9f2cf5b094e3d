"""FaceForensics++ as the official download script leaves it.

    <root>/original_sequences/youtube/<c>/videos/<id>.mp4                     real, id 000-999
    <root>/original_sequences/actors/<c>/videos/<actor>__<scene>.mp4          real (DFD)
    <root>/manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4
    <root>/manipulated_sequences/DeepFakeDetection/<c>/videos/<t>_<s>__<scene>__<tag>.mp4
    <root>/manipulated_sequences/<Method>/masks/videos/<name>.mp4             official masks
    splits: train.json / val.json / test.json, lists of id pairs [["953", "974"], ...]

A pair's two ids belong to its split, and its fakes are `a_b` and `b_a`; a fake's
background (its frames) is the target `a`, so its original is `a.mp4`. The DeepFakeDetection
actors have no official split: they are read as split 'test' (an unseen-data test set, as
in Face X-ray's evaluation).
"""
from __future__ import annotations

import json
import re

from pipelines import storage
from pipelines.readers.base import SPLITS, InputError, Listing, ReaderOptions, require_dir, selects
from pipelines.records import Source
from shards.keys import sanitize

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
DFD = "DeepFakeDetection"
DFD_SPLIT = "test"
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__[^_]+$")
_PAIR_FAKE = re.compile(r"^(\d+)_(\d+)$")


def looks_like_ffpp(root: str) -> bool:
    return any(storage.is_folder(storage.join(root, f)) for f in ("original_sequences", "manipulated_sequences"))


def load_splits(root: str, splits_dir: str | None) -> dict[str, str]:
    """id -> split from train/val/test.json (each a list of id pairs)."""
    candidates = [splits_dir] if splits_dir else [storage.join(root, "splits"), root]
    for folder in candidates:
        files = {split: storage.join(folder, f"{split}.json") for split in SPLITS}
        if all(storage.is_file(f) for f in files.values()):
            break
    else:
        where = " or ".join(storage.join(c, "{train,val,test}.json") for c in candidates)
        raise InputError(
            f"FaceForensics++ split files not found at {where}. They ship in the FaceForensics "
            f"repository (dataset/splits/); copy them there or pass --splits DIR")
    split_of: dict[str, str] = {}
    for split, path in files.items():
        try:
            pairs = json.loads(storage.read_text(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise InputError(f"{path} must be a JSON list of id pairs like [[\"953\", \"974\"], ...]")
        for pair in pairs:
            for video_id in map(str, pair):
                if split_of.setdefault(video_id, split) != split:
                    raise InputError(f"id {video_id} is in both {split_of[video_id]}.json and {split}.json")
    return split_of


def _videos(root: str, folder: str) -> list[tuple[str, str]]:
    """(relative path, name without '.mp4') of the videos directly in `folder` (relative to
    `root`), sorted."""
    return [(f"{folder}/{name}", name[:-4]) for name in storage.files_in(storage.join(root, folder), ".mp4")]


def _chosen_methods(root: str, compression: str, requested: tuple[str, ...] | None) -> list[str]:
    def videos(method: str) -> str:
        return storage.join(root, "manipulated_sequences", method, compression, "videos")

    if requested:
        unknown = sorted(set(requested) - set(METHODS))
        if unknown:
            raise InputError(f"unknown FF++ methods {unknown}; choose from {', '.join(METHODS)}")
        for method in requested:
            require_dir(videos(method), f"FF++ {method} videos")
        return list(requested)
    return [m for m in METHODS if storage.is_folder(videos(m))]


def _masks(root: str, method: str) -> set[str]:
    """Relative paths of a method's official mask videos."""
    return {path for path, _ in _videos(root, f"manipulated_sequences/{method}/masks/videos")}


def read_ffpp(root: str, options: ReaderOptions) -> Listing:
    """Real and manipulated FF++ videos of `options.split` at `options.compression`, read
    from a local folder or a URL; source paths are relative to `root`."""
    root = storage.root_of(root)
    compression = options.compression
    youtube = f"original_sequences/youtube/{compression}/videos"
    require_dir(storage.join(root, youtube), "FF++ original videos",
                "Pass --compression raw|c23|c40 to match what was downloaded")
    split_of = load_splits(root, options.splits_dir)
    listing = Listing()

    def source(path: str, video: str, identity: str, split: str, **manipulation) -> Source:
        return Source(path=path, dataset="ffpp", video=sanitize(video), identity=identity, split=split,
                      root=root, **manipulation)

    originals = {}
    for path, video_id in _videos(root, youtube):
        split = split_of.get(video_id)
        if split is None:
            listing.skip(path, "not_in_any_split", f"id {video_id} is in none of train/val/test.json")
            continue
        originals[video_id] = path
        if selects(split, options.split):
            listing.sources.append(source(path, f"youtube-{video_id}", video_id, split))

    methods = _chosen_methods(root, compression, options.methods)
    for method in methods:
        if method == DFD:
            _read_dfd(root, compression, options.split, listing, source)
            continue
        masks = _masks(root, method)
        for path, name in _videos(root, f"manipulated_sequences/{method}/{compression}/videos"):
            match = _PAIR_FAKE.match(name)
            if not match:
                listing.skip(path, "unexpected_name", "FF++ fakes are named <target>_<source>.mp4")
                continue
            target, donor = match.groups()
            split = split_of.get(target)
            if split is None or split_of.get(donor) != split:
                listing.skip(path, "not_in_any_split",
                             f"ids {target} and {donor} are not one pair of a split file")
                continue
            if target not in originals:
                listing.skip(path, "original_missing", f"{youtube}/{target}.mp4 not found")
                continue
            if selects(split, options.split):
                mask = f"manipulated_sequences/{method}/masks/videos/{name}.mp4"
                listing.sources.append(source(
                    path, f"{method}-{name}", target, split, kind="manipulated", method=method,
                    original=originals[target], mask=mask if mask in masks else ""))
    return listing


def _read_dfd(root: str, compression: str, requested: str, listing: Listing, source) -> None:
    """DeepFakeDetection fakes and their actor originals (split 'test')."""
    if not selects(DFD_SPLIT, requested):
        return
    actors = _videos(root, f"original_sequences/actors/{compression}/videos")
    for path, name in actors:
        listing.sources.append(source(path, f"actors-{name}", f"actor{name.split('__')[0]}", DFD_SPLIT))
    actor_paths = {name: path for path, name in actors}
    masks = _masks(root, DFD)
    for path, name in _videos(root, f"manipulated_sequences/{DFD}/{compression}/videos"):
        match = _DFD_FAKE.match(name)
        actor = f"{match.group(1)}__{match.group(3)}" if match else ""
        if actor not in actor_paths:
            where = f"original_sequences/actors/{compression}/videos/{actor}.mp4" if match else "(unparsable name)"
            listing.skip(path, "original_missing", f"actor original {where} not found")
            continue
        mask = f"manipulated_sequences/{DFD}/masks/videos/{name}.mp4"
        listing.sources.append(source(
            path, f"{DFD}-{name}", f"actor{match.group(1)}", DFD_SPLIT, kind="manipulated", method=DFD,
            original=actor_paths[actor], mask=mask if mask in masks else ""))
