"""Schemas of the Parquet tables written next to the shards (DESIGN.md, "Tables")."""
from __future__ import annotations

import pyarrow as pa

FACES = pa.schema([
    ("key", pa.string()), ("dataset", pa.string()), ("split", pa.string()),
    ("video", pa.string()), ("identity", pa.string()), ("frame", pa.int64()),
    ("path", pa.string()),
    ("box", pa.list_(pa.float32(), 4)),           # x0, y0, x1, y1, frame px
    ("score", pa.float32()),
    ("landmarks", pa.list_(pa.float32(), 136)),    # 68 x (x, y), crop px, row-major
    ("crop_matrix", pa.list_(pa.float32(), 6)),    # 2 x 3 affine, frame px -> crop px, row-major
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

TABLES = {"faces": FACES, "index": INDEX, "failures": FAILURES}
