"""WebDataset tar shards: deterministic writing (the same samples give the same bytes) and
a streaming reader for the build's own checks, which needs neither webdataset nor torch."""
from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from shards.sample import EncodedSample

TAR_MTIME = 0
"""Fixed member mtime (1970-01-01), so shards do not depend on when they were written."""


Span = tuple[int, int]
"""(offset, size) in bytes of one member's data inside a tar file."""


def write_tar(stream: BinaryIO, samples: Iterable[EncodedSample]) -> list[dict[str, Span]]:
    """Write samples as `<key>.<member>` entries, members in the order of each sample's
    `members`. Returns, per sample, where each member's data lies in the file, so a reader
    can fetch one member by seeking (`read_member`).

    Owner, group, mode and mtime are fixed, so the archive depends only on the samples.
    """
    spans = []
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for sample in samples:
            if "." in sample.key:
                raise ValueError(f"sample key {sample.key!r} has a dot: WebDataset cuts keys at the first dot")
            where = {}
            for member, data in sample.members.items():
                info = tarfile.TarInfo(f"{sample.key}.{member}")
                info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o444
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, io.BytesIO(data))
                padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                where[member] = (archive.offset - padded, len(data))
            spans.append(where)
    return spans


def read_member(stream: BinaryIO, span: Span) -> bytes:
    """The data of one member, from a seekable stream of a tar written by `write_tar`."""
    offset, size = span
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"member at byte {offset} is cut short: {len(data)} of {size} bytes")
    return data


def read_tar(stream: BinaryIO) -> Iterator[dict[str, bytes | str]]:
    """Samples of a shard in file order, as WebDataset groups them: `{"__key__": key,
    member: bytes, ...}`, members joined on the name before the first dot. Reads the stream
    once, front to back (no seeking), so a remote file works and stopping early reads
    only the start of the shard."""
    sample: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for info in archive:
            if not info.isfile():
                continue
            key, _, member = info.name.partition(".")
            if sample and sample["__key__"] != key:
                yield sample
                sample = {}
            sample["__key__"] = key
            sample[member] = archive.extractfile(info).read()
    if sample:
        yield sample
