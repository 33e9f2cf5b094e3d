"""What a Dataflow worker does with the package Beam stages from `--setup_file
./pyproject.toml`: unpack the sdist and run the project's code from it alone (test helper)."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "blending", "landmarks", "shards", "trainers")
"""The project's top-level packages (pyproject.toml's [tool.setuptools.packages.find])."""


def unpack_sdist(sdist: Path, folder: Path) -> Path:
    """Extract `sdist` into `folder` and return the source tree it holds, after checking
    that it holds every Python file of the project's packages in this checkout."""
    with tarfile.open(sdist) as archive:
        archive.extractall(folder, filter="data")
    (source,) = list(folder.iterdir())
    for package in PACKAGES:
        missing = _python_files(ROOT, package) - _python_files(source, package)
        assert (source / package / "__init__.py").is_file() and not missing, (package, sorted(missing))
    return source


def _python_files(root: Path, package: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts}


_WORKER = """
import importlib, json, sys
source, pickled = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, source)
for name in ("pipelines.cli", "pipelines.build_bi_shards", "pipelines.build_forgery_shards", "trainers.loop",
             "blending", "landmarks", "shards"):
    importlib.import_module(name)
from apache_beam.internal import pickler
runs = {}
for step, path in pickled.items():
    with open(path, "rb") as stream:
        fn = pickler.loads(stream.read())[0]
    code = getattr(fn, "_fn", fn)        # a Map/FlatMap's function, else the DoFn itself
    runs[step] = getattr(code, "__module__", None) or type(code).__module__
packages = set(sys.argv[3].split(","))
outside = sorted(f"{name}: {module.__file__}" for name, module in sys.modules.items()
                 if name.split(".")[0] in packages and not (getattr(module, "__file__", "") or "").startswith(source))
print(json.dumps({"runs": runs, "outside": outside}))
"""


def run_as_a_worker(source: Path, cwd: Path, pickled: dict[str, bytes] | None = None) -> dict[str, str]:
    """In a fresh Python whose first path entry is `source` (an unpacked sdist), started in
    `cwd` (outside the checkout): import the pipelines and trainers, and unpickle each
    pickled DoFn payload of `pickled` ({step name: payload}); return {step name: module of
    the code it runs}, after checking that every module of the project came from `source`."""
    payloads = {}
    for number, (step, payload) in enumerate((pickled or {}).items()):
        path = cwd / f"dofn-{number}.pickle"
        path.write_bytes(payload)
        payloads[step] = str(path)
    result = subprocess.run([sys.executable, "-c", _WORKER, str(source), json.dumps(payloads), ",".join(PACKAGES)],
                            cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outside"] == [], report["outside"]
    return report["runs"]
