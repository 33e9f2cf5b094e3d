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
import os
import re

from pipelines.readers.base import InputError, Listing, ReaderOptions, require_dir, selects, videos_in, SPLITS
from pipelines.records import Source
from shards.keys import sanitize

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
DFD = "DeepFakeDetection"
DFD_SPLIT = "test"
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__[^_]+$")
_PAIR_FAKE = re.compile(r"^(\d+)_(\d+)$")


def looks_like_ffpp(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "original_sequences")) or \
        os.path.isdir(os.path.join(root, "manipulated_sequences"))


def load_splits(root: str, splits_dir: str | None) -> dict[str, str]:
    """id -> split from train/val/test.json (each a list of id pairs)."""
    candidates = [splits_dir] if splits_dir else [os.path.join(root, "splits"), root]
    for folder in candidates:
        files = {split: os.path.join(folder, f"{split}.json") for split in SPLITS}
        if all(os.path.isfile(f) for f in files.values()):
            break
    else:
        where = " or ".join(os.path.join(c, "{train,val,test}.json") for c in candidates)
        raise InputError(
            f"FaceForensics++ split files not found at {where}. They ship in the FaceForensics "
            f"repository (dataset/splits/); copy them there or pass --splits DIR")
    split_of: dict[str, str] = {}
    for split, path in files.items():
        with open(path) as stream:
            try:
                pairs = json.load(stream)
            except json.JSONDecodeError as error:
                raise InputError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise InputError(f"{path} must be a JSON list of id pairs like [[\"953\", \"974\"], ...]")
        for pair in pairs:
            for video_id in map(str, pair):
                if split_of.setdefault(video_id, split) != split:
                    raise InputError(f"id {video_id} is in both {split_of[video_id]}.json and {split}.json")
    return split_of


def _chosen_methods(root: str, compression: str, requested: tuple[str, ...] | None) -> list[str]:
    manipulated = os.path.join(root, "manipulated_sequences")
    if requested:
        unknown = sorted(set(requested) - set(METHODS))
        if unknown:
            raise InputError(f"unknown FF++ methods {unknown}; choose from {', '.join(METHODS)}")
        for method in requested:
            require_dir(os.path.join(manipulated, method, compression, "videos"), f"FF++ {method} videos")
        return list(requested)
    return [m for m in METHODS if os.path.isdir(os.path.join(manipulated, m, compression, "videos"))]


def read_ffpp(root: str, options: ReaderOptions) -> Listing:
    """Real and manipulated FF++ videos of `options.split` at `options.compression`."""
    compression = options.compression
    youtube = require_dir(os.path.join(root, "original_sequences", "youtube", compression, "videos"),
                          "FF++ original videos", "Pass --compression raw|c23|c40 to match what was downloaded")
    split_of = load_splits(root, options.splits_dir)
    listing = Listing()

    def source(path: str, video: str, identity: str, split: str, **manipulation) -> Source:
        return Source(path=os.path.abspath(path), dataset="ffpp", video=sanitize(video),
                      identity=identity, split=split, **manipulation)

    originals = {}
    for path in videos_in(youtube):
        video_id = os.path.basename(path)[:-4]
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
        folder = os.path.join(root, "manipulated_sequences", method)
        for path in videos_in(os.path.join(folder, compression, "videos")):
            name = os.path.basename(path)[:-4]
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
                mask = os.path.join(folder, "masks", "videos", f"{name}.mp4")
                listing.sources.append(source(
                    path, f"{method}-{name}", target, split, kind="manipulated", method=method,
                    original=os.path.abspath(originals[target]),
                    mask=os.path.abspath(mask) if os.path.isfile(mask) else ""))
    return listing


def _read_dfd(root: str, compression: str, requested: str, listing: Listing, source) -> None:
    """DeepFakeDetection fakes and their actor originals (split 'test')."""
    actors = os.path.join(root, "original_sequences", "actors", compression, "videos")
    if not selects(DFD_SPLIT, requested):
        return
    if os.path.isdir(actors):
        for path in videos_in(actors):
            name = os.path.basename(path)[:-4]
            listing.sources.append(source(path, f"actors-{name}", f"actor{name.split('__')[0]}", DFD_SPLIT))
    folder = os.path.join(root, "manipulated_sequences", DFD)
    for path in videos_in(os.path.join(folder, compression, "videos")):
        name = os.path.basename(path)[:-4]
        match = _DFD_FAKE.match(name)
        original = os.path.join(actors, f"{match.group(1)}__{match.group(3)}.mp4") if match else ""
        if not match or not os.path.isfile(original):
            listing.skip(path, "original_missing", f"actor original {original or '(unparsable name)'} not found")
            continue
        mask = os.path.join(folder, "masks", "videos", f"{name}.mp4")
        listing.sources.append(source(
            path, f"{DFD}-{name}", f"actor{match.group(1)}", DFD_SPLIT, kind="manipulated", method=DFD,
            original=os.path.abspath(original), mask=os.path.abspath(mask) if os.path.isfile(mask) else ""))
