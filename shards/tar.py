"""Deterministic WebDataset tar writing: the same samples give the same bytes."""
from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

from shards.sample import MEMBERS, EncodedSample

TAR_MTIME = 0
"""Fixed member mtime (1970-01-01), so shards do not depend on when they were written."""


def write_tar(stream: BinaryIO, samples: Iterable[EncodedSample]) -> None:
    """Write samples as `<key>.<member>` entries in MEMBERS order.

    Owner, group, mode and mtime are fixed, so the archive depends only on the samples.
    """
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for sample in samples:
            if "." in sample.key:
                raise ValueError(f"sample key {sample.key!r} has a dot: WebDataset cuts keys at the first dot")
            for member in MEMBERS:
                data = sample.members[member]
                info = tarfile.TarInfo(f"{sample.key}.{member}")
                info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o444
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, io.BytesIO(data))
