"""Dataset cards: what an output folder holds, computed from its tables."""
from __future__ import annotations

from collections import Counter
from importlib import metadata

PACKAGES = ("forgery-shards", "apache-beam", "mediapipe", "opencv-contrib-python", "numpy", "scipy",
            "scikit-image", "webdataset", "pyarrow", "torch")


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def dataset_stats(index: list[dict], failures: list[dict], faces: int, parameters: dict, command: str) -> dict:
    """stats.json content: sample counts by kind, label, method, split and identity,
    failure counts by stage/reason, the run's parameters, package versions and command."""
    def count(field: str) -> dict:
        return dict(sorted(Counter(str(row[field]) for row in index).items()))

    return {
        "samples": len(index), "faces": faces, "shards": len({row["shard"] for row in index}),
        "by_kind": count("kind"), "by_label": count("label"), "by_method": count("method"),
        "by_split": count("split"), "identities": len({row["identity"] for row in index}),
        "by_identity": count("identity"), "videos": len({row["video"] for row in index}),
        "failures": len(failures),
        "failures_by_reason": dict(sorted(Counter(f"{r['stage']}/{r['reason']}" for r in failures).items())),
        "parameters": parameters, "command": command, "packages": package_versions(),
    }


def faces_stats(faces: list[dict], failures: list[dict], parameters: dict, command: str) -> dict:
    """stats.json of a face-shard folder: face counts by split and dataset, videos,
    identities, shards, failures by stage/reason, parameters, packages and command."""
    def count(field: str) -> dict:
        return dict(sorted(Counter(str(row[field]) for row in faces).items()))

    return {
        "faces": len(faces), "shards": len({row["shard"] for row in faces}),
        "videos": len({(row["dataset"], row["video"]) for row in faces}),
        "identities": len({(row["dataset"], row["identity"]) for row in faces}),
        "by_split": count("split"), "by_dataset": count("dataset"),
        "failures": len(failures),
        "failures_by_reason": dict(sorted(Counter(f"{r['stage']}/{r['reason']}" for r in failures).items())),
        "parameters": parameters, "command": command, "packages": package_versions(),
    }


def faces_card_markdown(stats: dict) -> str:
    """README.md of a face-shard folder."""
    return f"""# Face shards

{stats['faces']} face crops of {stats['videos']} videos and {stats['identities']} identities, in {stats['shards']} WebDataset shards (`shard-*.tar`: `img.png` stored crop, `hull.png`, `json` with the face record, 68 landmarks and the 478-point mesh in crop pixels). `faces.parquet` has one row per face (with where its members lie in its shard), `neighbours.parquet` each face's nearest faces by landmarks (row numbers of `faces.parquet`), `failures.parquet` what was dropped. Blend from them with `beam run build_bi_shards --faces`, or online with `beam train --train-faces`.

Made by: `{stats['command']}`

{_table(stats['by_split'], 'split')}

## Dropped inputs and faces: {stats['failures']}

{_table(stats['failures_by_reason'], 'stage/reason')}

## Parameters

```
{chr(10).join(f'{k} = {v}' for k, v in _flatten(stats['parameters']).items())}
```

Packages: {', '.join(f'{k} {v}' for k, v in stats['packages'].items())}
"""


def _table(counts: dict, header: str) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in counts.items()) or "| (none) | 0 |"
    return f"| {header} | count |\n|---|---|\n{rows}"


def card_markdown(stats: dict, title: str) -> str:
    """README.md of an output folder."""
    identities = stats["by_identity"]
    return f"""# {title}

{stats['samples']} samples from {stats['faces']} face crops of {stats['videos']} videos and {stats['identities']} identities, in {stats['shards']} WebDataset shards (`shard-*.tar`), with `index.parquet` (one row per sample) and `failures.parquet` (what was dropped) beside them. `preview.png` shows the first samples; `stats.json` holds everything below.

Made by: `{stats['command']}`

{_table(stats['by_kind'], 'kind')}

{_table(stats['by_label'], 'label (cls)')}

{_table(stats['by_method'], 'method')}

{_table(stats['by_split'], 'split')}

Samples per identity: min {min(identities.values(), default=0)}, max {max(identities.values(), default=0)} over {len(identities)} identities.

## Dropped inputs and faces: {stats['failures']}

{_table(stats['failures_by_reason'], 'stage/reason')}

## Parameters

```
{chr(10).join(f'{k} = {v}' for k, v in _flatten(stats['parameters']).items())}
```

## Reading it

```python
import webdataset as wds, pyarrow.parquet as pq
samples = wds.WebDataset("shard-{{000000..{stats['shards'] - 1:06d}}}.tar").decode("rgb8")
index = pq.read_table("index.parquet").to_pandas()
```

Packages: {', '.join(f'{k} {v}' for k, v in stats['packages'].items())}
"""


def _flatten(value: dict, prefix: str = "") -> dict:
    flat = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(_flatten(item, name + "."))
        else:
            flat[name] = item
    return flat
