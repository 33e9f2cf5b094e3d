"""After a build: the output folder's dataset card (README.md, stats.json) and preview.png."""
from __future__ import annotations

import dataclasses
import itertools
import json

import cv2
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from shards.card import card_markdown, dataset_stats
from shards.layout import shard_name
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
    with FileSystems.open(FileSystems.join(directory, shard_name(0))) as stream:
        return list(itertools.islice(read_tar(stream), count))


def write_dataset_card(directory: str, title: str, config, command: str) -> dict:
    """Write README.md, stats.json and preview.png into `directory`; returns the stats.
    `command`: the command line that made the output."""
    index = _read_table(directory, "index")
    stats = dataset_stats(index, _read_table(directory, "failures"), _row_count(directory, "faces"),
                          json.loads(json.dumps(dataclasses.asdict(config), default=str)), command)
    _write(directory, "stats.json", json.dumps(stats, indent=2).encode())
    _write(directory, "README.md", card_markdown(stats, title).encode())
    if index:
        sheet = contact_sheet(_first_samples(directory, 12))
        ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if ok:
            _write(directory, "preview.png", png.tobytes())
    return stats
