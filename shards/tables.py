"""Schemas of the Parquet tables written next to the shards (DESIGN.md, "Tables")."""
from __future__ import annotations

import pyarrow as pa

FACES = pa.schema([
    ("key", pa.string()), ("dataset", pa.string()), ("split", pa.string()),
    ("video", pa.string()), ("identity", pa.string()), ("frame", pa.int64()),
    ("path", pa.string()),
    ("frame_width", pa.int32()), ("frame_height", pa.int32()),   # source frame, px
    ("box", pa.list_(pa.float32(), 4)),           # x0, y0, x1, y1, frame px
    ("score", pa.float32()),
    ("landmarks", pa.list_(pa.float32(), 136)),    # 68 x (x, y), crop px, row-major
    ("crop_matrix", pa.list_(pa.float32(), 6)),    # 2 x 3 affine, frame px -> crop px, row-major
    ("crop_size", pa.int32()), ("crop_margin", pa.float64()),
    # Face shards: the shard holding the face, and where its img.png and json data lie in
    # it (byte offset, size); "" and -1 in tables of sample shards.
    ("shard", pa.string()),
    ("image_offset", pa.int64()), ("image_bytes", pa.int64()),
    ("json_offset", pa.int64()), ("json_bytes", pa.int64()),
])

NEIGHBOURS = pa.schema([
    ("key", pa.string()),
    ("neighbours", pa.list_(pa.int32())),          # row numbers in faces.parquet, nearest first
    ("distances", pa.list_(pa.float32())),         # squared distances of normalised landmarks
])

INDEX = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("kind", pa.string()),
    ("label", pa.int64()), ("method", pa.string()), ("split", pa.string()),
    ("identity", pa.string()), ("video", pa.string()), ("foreground_key", pa.string()),
])

FAILURES = pa.schema([
    ("path", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("frame", pa.int64()),                         # -1 when the whole input failed
    ("detail", pa.string()),
])

TABLES = {"faces": FACES, "index": INDEX, "failures": FAILURES, "neighbours": NEIGHBOURS}
