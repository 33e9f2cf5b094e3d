"""After a build: the output folder's dataset card (README.md, stats.json) and preview.png."""
from __future__ import annotations

import dataclasses
import itertools
import json

import cv2
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.storage import matching
from shards.card import card_markdown, dataset_stats, faces_card_markdown, faces_stats
from shards.preview import contact_sheet
from shards.tar import read_tar


def _read_table(directory: str, name: str) -> list[dict]:
    with FileSystems.open(FileSystems.join(directory, f"{name}.parquet")) as stream:
        return pq.read_table(stream).to_pylist()


def _row_count(directory: str, name: str) -> int:
    """Rows of a table, from its Parquet footer (no data read)."""
    with FileSystems.open(FileSystems.join(directory, f"{name}.parquet")) as stream:
        return pq.ParquetFile(stream).metadata.num_rows


def _write(directory: str, name: str, data: bytes) -> None:
    with FileSystems.create(FileSystems.join(directory, name)) as stream:
        stream.write(data)


def _first_samples(directory: str, count: int) -> list[dict]:
    """The first `count` samples in shard order (a face-shard folder may have empty shards)."""
    shards = [m.path for m in matching(directory, "shard-*.tar")]
    samples: list[dict] = []
    for path in shards:
        with FileSystems.open(path) as stream:
            samples.extend(itertools.islice(read_tar(stream), count - len(samples)))
        if len(samples) == count:
            break
    return samples


def face_count(directory: str) -> int:
    """Faces in a face-shard folder (rows of its faces.parquet)."""
    return _row_count(directory, "faces")


def output_counts(directory: str, faces: str | None = None) -> dict[str, int]:
    """The end-of-run counters, read from what a run wrote into `directory` (and its face
    folder `faces`) for a runner that reports no metrics: faces kept, face shards,
    samples by kind and sample shards. Tables not written count nothing."""
    counts: dict[str, int] = {}
    has_index = FileSystems.exists(FileSystems.join(directory, "index.parquet"))
    face_folder = faces if faces is not None else (None if has_index else directory)
    for folder in {face_folder, directory} - {None}:
        if FileSystems.exists(FileSystems.join(folder, "faces.parquet")):
            counts["faces/kept"] = face_count(folder)
    if face_folder is not None:
        counts["units/written"] = len(matching(face_folder, "shard-*.tar"))
    if has_index:
        index = _read_table(directory, "index")
        counts["samples/written"] = len(index)
        counts["shards/written"] = len({row["shard"] for row in index})
        for row in index:
            counts[f"samples/{row['kind']}"] = counts.get(f"samples/{row['kind']}", 0) + 1
    return counts


def stored_crop_margin(directory: str) -> float:
    """The crop margin of a face-shard folder's stored crops (OSError if it has none)."""
    with FileSystems.open(FileSystems.join(directory, "faces.parquet")) as stream:
        margins = pq.read_table(stream, columns=["crop_margin"]).column("crop_margin").to_pylist()
    if not margins:
        raise OSError(f"{directory} holds no faces")
    return min(margins)


LOCATIONS = ("directory", "faces", "claims")
"""Config fields that say where a run read or wrote (output and face folders, the local
claims folder), not what it made: left out of the card, which travels with the data (the
input root is in run.json)."""


def _parameters(config) -> dict:
    """The config as plain JSON values, without its `LOCATIONS`."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in LOCATIONS}
        return value

    return plain(json.loads(json.dumps(dataclasses.asdict(config), default=str)))


def _preview(directory: str, rows: int) -> None:
    sheet = contact_sheet(_first_samples(directory, rows))
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if ok:
        _write(directory, "preview.png", png.tobytes())


def write_dataset_card(directory: str, title: str, config, command: str, faces: int | None = None) -> dict:
    """Write README.md, stats.json and preview.png into a sample-shard folder; returns the
    stats. `command`: the command line that made the output. faces: face crops the samples
    came from (default: rows of the folder's faces.parquet)."""
    index = _read_table(directory, "index")
    faces = _row_count(directory, "faces") if faces is None else faces
    stats = dataset_stats(index, _read_table(directory, "failures"), faces, _parameters(config), command)
    _write(directory, "stats.json", json.dumps(stats, indent=2).encode())
    _write(directory, "README.md", card_markdown(stats, title).encode())
    if index:
        _preview(directory, 12)
    return stats


def write_faces_card(directory: str, config, command: str) -> dict:
    """README.md, stats.json and preview.png of a face-shard folder; returns the stats."""
    faces = _read_table(directory, "faces")
    stats = faces_stats(faces, _read_table(directory, "failures"), _parameters(config), command)
    _write(directory, "stats.json", json.dumps(stats, indent=2).encode())
    _write(directory, "README.md", faces_card_markdown(stats).encode())
    if faces:
        _preview(directory, 8)
    return stats
