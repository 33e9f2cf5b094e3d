"""An in-memory Beam FileSystem (scheme mem://) for tests: an object store like GCS, no
directories, listing by prefix; `exists`, `size` and `metadata` answer for objects only (a
"folder" is a prefix, not an object). Defining the class registers the scheme with Beam."""
from __future__ import annotations

import hashlib
import io

from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata, FileSystem


class _Upload(io.BytesIO):
    def __init__(self, store: dict, path: str):
        super().__init__()
        self._store, self._path = store, path

    def close(self):
        if not self.closed:
            self._store[self._path] = self.getvalue()
        super().close()


class InMemoryFileSystem(FileSystem):
    files: dict[str, bytes] = {}

    @classmethod
    def scheme(cls):
        return "mem"

    def join(self, base, *paths):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, data in sorted(self.files.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), 0.0)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return _Upload(self.files, path)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        if path not in self.files:
            raise BeamIOError("open failed", {path: FileNotFoundError(path)})
        return io.BytesIO(self.files[path])

    def _under(self, path):
        return [p for p in self.files if p == path or p.startswith(path.rstrip("/") + "/")]

    def copy(self, source_file_names, destination_file_names):
        for source, destination in zip(source_file_names, destination_file_names):
            for path in self._under(source):
                self.files[destination + path[len(source):]] = self.files[path]

    def rename(self, source_file_names, destination_file_names):
        for source, destination in zip(source_file_names, destination_file_names):
            for path in self._under(source):
                self.files[destination + path[len(source):]] = self.files.pop(path)

    def exists(self, path):
        return path in self.files

    def _object(self, path):
        if path not in self.files:
            raise BeamIOError("no such object", {path: FileNotFoundError(path)})
        return self.files[path]

    def size(self, path):
        return len(self._object(path))

    def last_updated(self, path):
        self._object(path)
        return 0.0

    def checksum(self, path):
        return hashlib.md5(self._object(path)).hexdigest()

    def metadata(self, path):
        return FileMetadata(path, len(self._object(path)), 0.0)

    def delete(self, paths):
        for path in paths:
            for key in self._under(path):
                del self.files[key]
