"""The Dataflow jobs the README tells users to submit, built offline: its exact commands
(read from README.md; only the placeholders and the input change) go through `beam run`
with Beam's `--dry_run=True`, which builds the job DataflowRunner would submit (every DoFn
pickled, the --setup_file package built) and returns before staging or submitting it."""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2

from conftest import FFPP_FAKES, FFPP_ORIGINALS, FFPP_SPLITS, make_ffpp_tree
from staged_package import PACKAGES, ROOT, run_as_a_worker, unpack_sdist

PLACEHOLDERS = {"BUCKET": "my-bucket", "PROJECT": "my-project", "REGION": "europe-west1",
                "REGISTRY": "registry.example.com/team"}
"""The README's placeholders and valid values for them (GCS bucket names are lower case)."""

STAGES = [["Units", "ExtractFaces", "WriteFaceTables"], ["ShardTasks", "WriteBiShards", "PlanFailures", "WriteTables"]]
"""The named PTransforms of the jobs of build_bi_shards --input: extraction, then BI."""

PROJECT_CODE = [{"ExtractFaces": {"pipelines.extract"}, "WriteFaceTables": {"pipelines.face_tables"}},
                {"WriteBiShards": {"pipelines.samples"}, "WriteTables": {"pipelines.write"}}]
"""Each job's stages -> the project's modules whose DoFns they run."""


def readme_commands() -> list[list[str]]:
    """The `beam` and `docker` commands of the README's bash blocks, continuation lines
    joined, split as the shell does (a line holding `a && b` is one list with the '&&' token)."""
    text = (ROOT / "README.md").read_text()
    return [shlex.split(line) for block in re.findall(r"```bash\n(.*?)```", text, re.S)
            for line in block.replace("\\\n", " ").splitlines() if line.split(" ")[0] in ("beam", "docker")]


def dataflow_commands() -> dict[str, list[str]]:
    """The README's Dataflow commands: {'package': the --setup_file one, 'image': the
    --sdk_container_image one}."""
    found = [c for c in readme_commands() if c[:2] == ["beam", "run"] and "DataflowRunner" in c]
    commands = {("image" if "--sdk_container_image" in c else "package"): c for c in found}
    assert len(found) == 2 and set(commands) == {"package", "image"}, found
    return commands


def _substituted(command: list[str], input_dir: Path) -> list[str]:
    """`command` with the placeholders filled in and --input (a gs:// URL) replaced by a
    local folder: listing a bucket's inputs needs the network."""
    args = [re.sub(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", lambda m: PLACEHOLDERS[m.group(1)], arg)
            for arg in command]
    at = args.index("--input") + 1
    assert args[at].startswith("gs://")
    args[at] = str(input_dir)
    return args


class NetworkUsed(RuntimeError):
    """Raised (not an OSError, so no client retries it) where the build opens a connection."""


@pytest.fixture
def offline(monkeypatch) -> list[tuple]:
    """Refuses every name lookup and every connection off this host made through Python's
    socket module while a test runs; the refused attempts."""
    attempts = []

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        raise NetworkUsed(f"name lookup of {host} while building a job offline")

    def refuse_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(("connect", address))
            raise NetworkUsed(f"connection to {address} while building a job offline")
        return connect(self, address)

    connect = socket.socket.connect
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    return attempts


@pytest.fixture
def built_jobs(monkeypatch) -> list:
    """The jobs DataflowRunner builds while a test runs (its dry run hands the job back on
    the result it returns instead of submitting it)."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    jobs = []
    run_pipeline = DataflowRunner.run_pipeline

    def recording(self, *args, **kwargs):
        result = run_pipeline(self, *args, **kwargs)
        jobs.append(result.job)
        return result

    monkeypatch.setattr(DataflowRunner, "run_pipeline", recording)
    return jobs


@pytest.fixture
def ffpp_placeholders(tmp_path) -> Path:
    """A FaceForensics++ tree (the shared fixture's layout and split) whose videos are a few
    bytes that are no video: a dry run lists its inputs but never opens one."""
    data = tmp_path / "placeholders"
    for path in [*FFPP_ORIGINALS.values(), *FFPP_FAKES.values()]:
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_bytes(b"not a video")
    return make_ffpp_tree(tmp_path / "ffpp", data, FFPP_SPLITS, FFPP_ORIGINALS, FFPP_FAKES)


def _dry_run(kind: str, input_dir: Path, tmp_path: Path, monkeypatch, offline: list, built_jobs: list) -> list:
    """Build the README's `kind` Dataflow command with --dry_run=True through the `beam`
    command, from the checkout (--setup_file ./pyproject.toml is relative to it), Beam's
    temporary staging folder under `tmp_path`; the jobs built, in order."""
    from click.testing import CliRunner

    from pipelines.cli import main

    monkeypatch.chdir(ROOT)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    args = _substituted(dataflow_commands()[kind], input_dir)
    result = CliRunner().invoke(main, [*args[1:], "--dry_run=True"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert offline == []
    assert result.output.splitlines()[-3:] == [     # the BI plan is made from faces the first job writes
        "dry run: job 1 (DataflowRunner, 3 work items) built", "dry run: job 2 (DataflowRunner, 0 work items) built",
        "dry run: nothing was submitted or run, and --output was not touched"]
    assert len(built_jobs) == 2
    for job in built_jobs:
        options = job.options.get_all_options()
        assert (options["project"], options["region"]) == ("my-project", "europe-west1")
        assert options["temp_location"].startswith(f"gs://my-bucket/tmp/{job.proto.name}.")
        assert job.proto.name.startswith("beamapp-") and job.proto.type_.name == "JOB_TYPE_BATCH"
    assert [_stages(job) for job in built_jobs] == STAGES
    return built_jobs


def _transforms(job) -> dict[str, beam_runner_api_pb2.PTransform]:
    return {t.unique_name: t for t in job.proto_pipeline.components.transforms.values()}


def _stages(job) -> list[str]:
    components = job.proto_pipeline.components
    (root,) = job.proto_pipeline.root_transform_ids
    return [components.transforms[t].unique_name for t in components.transforms[root].subtransforms]


def _pickled_dofns(job) -> dict[str, bytes]:
    """{step name: pickled DoFn payload} of every Python ParDo of the job."""
    pickled = {}
    for name, transform in _transforms(job).items():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            do_fn = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn
            if do_fn.urn == python_urns.PICKLED_DOFN_INFO:
                pickled[name] = do_fn.payload
    return pickled


def _environment(job) -> tuple[str, dict[str, str]]:
    """(container image, {staged name: local file}) of the job's one environment."""
    (environment,) = job.proto_pipeline.components.environments.values()
    assert environment.urn == common_urns.environments.DOCKER.urn
    image = beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image
    staged = {}
    for artifact in environment.dependencies:
        assert artifact.type_urn == common_urns.artifact_types.FILE.urn
        assert artifact.role_urn == common_urns.artifact_roles.STAGING_TO.urn
        path = beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload).path
        staged[beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload).staged_name] = path
    return image, staged


def test_readme_dataflow_jobs_with_the_package_build_offline(ffpp_placeholders, tmp_path, monkeypatch, offline,
                                                              built_jobs):
    """The --setup_file command: its two jobs hold the extraction and BI stages, run Beam's
    default Dataflow image of this Beam version, and stage the package built from
    pyproject.toml; a fresh process with only that package unpickles every DoFn of both,
    and the project's stages run the project's code from it."""
    pytest.importorskip("build")
    jobs = _dry_run("package", ffpp_placeholders, tmp_path, monkeypatch, offline, built_jobs)
    pickled = {}
    for number, job in enumerate(jobs):
        image, staged = _environment(job)
        assert image.endswith(f"/beam_python{sys.version_info.major}.{sys.version_info.minor}_sdk:{beam.__version__}")
        assert "workflow.tar.gz" in staged and Path(staged["workflow.tar.gz"]).is_relative_to(tmp_path / "tmp")
        pickled |= {f"{number}:{step}": payload for step, payload in _pickled_dofns(job).items()}
    source = unpack_sdist(Path(_environment(jobs[0])[1]["workflow.tar.gz"]), tmp_path / "unpacked")
    unpickled, ours = [set(), set()], [{}, {}]
    for step, module in run_as_a_worker(source, tmp_path, pickled).items():
        number, name = step.split(":", 1)
        stage = name.split("/")[0]
        unpickled[int(number)].add(stage)
        if module.split(".")[0] in PACKAGES:
            ours[int(number)].setdefault(stage, set()).add(module)
    assert unpickled == [set(stages) for stages in STAGES]      # every stage has DoFns, all unpickled
    assert ours == PROJECT_CODE


def test_readme_dataflow_jobs_on_the_worker_image_build_offline(ffpp_placeholders, tmp_path, monkeypatch, offline,
                                                                built_jobs):
    """The --sdk_container_image command: the same stages on the image the README builds,
    on Runner v2 (which custom containers need), with no package staged (the image has it)."""
    for job in _dry_run("image", ffpp_placeholders, tmp_path, monkeypatch, offline, built_jobs):
        image, staged = _environment(job)
        assert image == f"{PLACEHOLDERS['REGISTRY']}/forgery-shards-worker:{_project()['version']}"
        assert "workflow.tar.gz" not in staged
        assert "use_runner_v2" in job.options.get_all_options()["experiments"]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_readme_and_dockerfile_describe_one_worker_image():
    """The image the README builds is the one its Dataflow, Spark and Flink commands run,
    tagged with the package version, built by the Dockerfile's own command; the Dockerfile
    installs this package with its [gcp] and [dask] extras, at the Beam and Python versions that launch
    jobs here, and starts Beam's worker boot program."""
    commands = readme_commands()
    (build,) = [c for c in commands if c[:2] == ["docker", "build"]]
    tag = build[build.index("-t") + 1]
    assert tag == f"REGISTRY/forgery-shards-worker:{_project()['version']}"
    assert build[build.index("&&") + 1:] == ["docker", "push", tag]
    used = {c[c.index(option) + 1] for c in commands for option in ("--sdk_container_image", "--environment_config")
            if option in c}
    assert used == {tag}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert " ".join(build) in dockerfile
    (beam_version,) = re.findall(r"^ARG BEAM_VERSION=(\S+)$", dockerfile, re.M)
    assert beam_version == beam.__version__, "the worker image's Beam must be the one that launches jobs"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == [f"apache/beam_python{python}_sdk:${{BEAM_VERSION}}",
                                                            f"python:{python}-slim"]
    assert _project()["requires-python"] == f">={python},<3.{sys.version_info.minor + 1}"
    assert set(re.findall(r"^COPY (\w+) /opt/forgery-shards/\1$", dockerfile, re.M)) == set(PACKAGES)
    assert '"/opt/forgery-shards[gcp,dask]" "apache-beam==${BEAM_VERSION}"' in dockerfile
    readme = (ROOT / "README.md").read_text()
    assert re.findall(r"torch==([\w.]+)", dockerfile) == re.findall(r"pip install torch==([\w.]+)", readme)[:1]
    assert dockerfile.rstrip().splitlines()[-2:] == ["COPY --from=beam /opt/apache/beam /opt/apache/beam",
                                                     'ENTRYPOINT ["/opt/apache/beam/boot"]']


def test_gcp_extra_holds_what_submitting_needs_next_to_mediapipe(offline):
    """With the [gcp] extra, gs:// paths have Beam's GCS file system and the Dataflow client
    a submission uses is made (credentials off: nothing is contacted), in one process with
    mediapipe and its protobuf 4."""
    import google.protobuf
    import mediapipe  # noqa: F401 - loaded with the Google clients below
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.gcp.gcsfilesystem import GCSFileSystem
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.dataflow.internal.apiclient import DataflowApplicationClient

    assert isinstance(FileSystems.get_filesystem("gs://my-bucket/ffpp"), GCSFileSystem)
    assert FileSystems.join("gs://my-bucket/bi_shards", "faces") == "gs://my-bucket/bi_shards/faces"
    client = DataflowApplicationClient(PipelineOptions(["--project", "my-project", "--region", "europe-west1",
                                                        "--temp_location", "gs://my-bucket/tmp", "--no_auth"]))
    assert type(client._jobs_client).__name__ == "JobsV1Beta3Client"
    assert google.protobuf.__version__.startswith("4.") and offline == []


def test_dry_run_on_other_runners_and_its_errors(ffpp_placeholders, tmp_path, offline):
    """Without --runner the graph is built and serialised, not run, and the output folder is
    not made; a job Dataflow would refuse is a one-line error."""
    from click.testing import CliRunner

    from pipelines.cli import main

    output = tmp_path / "out"
    local = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(ffpp_placeholders), "--output",
                                      str(output), "--dry_run=True"], catch_exceptions=False)
    assert local.exit_code == 0, local.output
    assert local.output.splitlines()[-3:] == [
        "dry run: job 1 (FnApiRunner, 3 work items) built", "dry run: job 2 (FnApiRunner, 0 work items) built",
        "dry run: nothing was submitted or run, and --output was not touched"]
    assert not output.exists()
    args = _substituted(dataflow_commands()["package"], ffpp_placeholders)
    at = args.index("--project")
    refused = CliRunner().invoke(main, [*args[1:at], *args[at + 2:], "--dry_run=True"])
    assert refused.exit_code == 1 and offline == []
    assert refused.output.splitlines()[-1] == "Error: the dry run failed: ValueError: Missing required option: project."


def test_dry_run_on_dataflow_without_temp_location_is_refused_offline(ffpp_placeholders, tmp_path, offline):
    """Without --temp_location Beam would look up (or create) a default bucket online, which a
    dry run must not do: it is refused at once, before any job is built or folder touched."""
    from click.testing import CliRunner

    from pipelines.cli import main

    args = _substituted(dataflow_commands()["package"], ffpp_placeholders)
    at = args.index("--temp_location")
    result = CliRunner().invoke(main, [*args[1:at], *args[at + 2:], "--dry_run=True"])
    assert result.exit_code == 2 and offline == []
    assert result.output.splitlines()[-1] == (
        "Error: --dry_run=True on DataflowRunner needs --temp_location gs://BUCKET/tmp: without it, building the job "
        "looks up (or creates) a default bucket over the network")
    assert "dry run: job" not in result.output


def _beam_command(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=os.environ | {"TMPDIR": str(tmp_path)})


def test_dry_run_and_help_print_nothing_from_third_parties(ffpp_placeholders, tmp_path):
    """Default output stays the project's own: no Google client FutureWarning at import, no
    package-build lines; -v shows the import-time warnings a plain `import apache_beam`
    prints."""
    args = _substituted(dataflow_commands()["package"], ffpp_placeholders)
    dry = _beam_command(*args[1:], "--dry_run=True", tmp_path=tmp_path)
    assert dry.returncode == 0 and dry.stderr == "", dry.stderr
    assert dry.stdout.splitlines()[-1] == "dry run: nothing was submitted or run, and --output was not touched"
    quiet = _beam_command("run", "build_bi_shards", "--help", tmp_path=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("Usage: ")
    plain = subprocess.run([sys.executable, "-c", "import apache_beam"], capture_output=True, text=True, timeout=300)
    loud = _beam_command("-v", "run", "build_bi_shards", "--help", tmp_path=tmp_path)
    warned = [line for line in plain.stderr.splitlines() if "Warning: " in line]
    assert loud.returncode == 0 and [line for line in loud.stderr.splitlines() if "Warning: " in line] == warned
