"""Shard URLs: expanding patterns, checking them before training or evaluation starts, and
opening them."""
from __future__ import annotations

import os


class MissingShards(ValueError):
    """A shard pattern of a command-line option gave no URL, or named local files that do
    not exist. `option` is the option ('--train', '--set celebdf', ...), `missing` the
    patterns or paths at fault."""

    def __init__(self, option: str, missing: list[str]):
        super().__init__(f"{option}: {len(missing)} shard pattern(s) or file(s) not found: {', '.join(missing[:10])}"
                         + (" ..." if len(missing) > 10 else ""))
        self.option, self.missing = option, missing


def expand_urls(patterns: str | list[str]) -> list[str]:
    """Brace patterns ('a/shard-{000000..000009}.tar') or lists of them -> list of URLs."""
    from webdataset.shardlists import expand_urls as expand
    patterns = [patterns] if isinstance(patterns, str) else patterns
    urls = [url for pattern in patterns for url in expand(pattern)]
    if not urls:
        raise ValueError(f"no shard URLs in {patterns!r}")
    return urls


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def checked_urls(option: str, patterns: list[str] | tuple[str, ...]) -> list[str]:
    """The URLs of `patterns` given to `option`, checked before any work starts: every
    pattern must give a URL, and every local file must exist (remote and `pipe:` URLs are
    checked when they are read). Raises MissingShards naming what is missing."""
    missing, urls = [], []
    for pattern in patterns:
        expanded = expand_urls(pattern) if pattern else []
        if not expanded:
            missing.append(repr(pattern))
        urls += expanded
    missing += [url for url in urls if _is_local(url) and not url.startswith("pipe:")
                and not os.path.isfile(url.removeprefix("file://"))]
    if missing or not urls:
        raise MissingShards(option, missing or ["(no pattern given)"])
    return urls


READ_BUFFER = 1 << 20
"""Bytes read from a local shard at a time: members (stored crops) are hundreds of KB."""


def open_url(url: str):
    """A binary stream for a shard URL. Local paths open directly; `pipe:` URLs (written by
    the user) go to webdataset; other schemes (gs://, s3://, hdfs://, https://) go through
    fsspec, which needs the scheme's package (gcsfs, s3fs, ...)."""
    if url.startswith("pipe:"):
        from webdataset import gopen
        return gopen.gopen(url)
    if _is_local(url):
        return open(url.removeprefix("file://"), "rb", buffering=READ_BUFFER)
    import fsspec
    try:
        return fsspec.open(url, "rb").open()
    except ImportError as error:
        scheme = url.split("://")[0]
        raise ImportError(f"reading {scheme}:// shards needs fsspec's {scheme} filesystem "
                          f"(e.g. pip install {'s3fs' if scheme == 's3' else 'gcsfs' if scheme == 'gs' else scheme + 'fs'}), "
                          f"or a 'pipe:' URL such as 'pipe:aws s3 cp {url} -'") from error
