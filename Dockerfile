# Worker image for running the pipelines on Dataflow (--sdk_container_image), Spark or Flink
# (--environment_type DOCKER), and for Dask workers (run it with the command `dask worker ...`
# in place of the entrypoint, e.g. Kubernetes `command: [dask, worker]`). Build and push it where Docker and the network are available:
#   docker build -t REGISTRY/forgery-shards-worker:0.1.0 . && docker push REGISTRY/forgery-shards-worker:0.1.0
#
# Not FROM Beam's SDK image: that image ships Google Cloud clients built for a newer protobuf
# than mediapipe 0.10.21 accepts (4.x), and installing this package over them would leave
# broken requirements. Instead a plain Python image gets this package with its [gcp] extra
# (the Dataflow and GCS parts at releases that accept protobuf 4), and Beam's worker boot
# program is copied from the SDK image, as Beam documents for custom containers.
# BEAM_VERSION and the Python version must equal those of the environment that launches jobs
# (tests/test_dataflow_job.py checks them against the installed apache-beam and pyproject.toml).
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam

FROM python:3.11-slim
ARG BEAM_VERSION

# OpenCV (opencv-contrib-python, which mediapipe brings) loads libGL and GLib.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && \
    rm -rf /var/lib/apt/lists/*

# CPU build of PyTorch (the pipelines do not train; the trainers need a CUDA image instead).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md /opt/forgery-shards/
COPY pipelines /opt/forgery-shards/pipelines
COPY blending /opt/forgery-shards/blending
COPY landmarks /opt/forgery-shards/landmarks
COPY shards /opt/forgery-shards/shards
COPY trainers /opt/forgery-shards/trainers
RUN pip install --no-cache-dir "/opt/forgery-shards[gcp,dask]" "apache-beam==${BEAM_VERSION}" && \
    pip check && \
    python -c "import mediapipe, cv2, pipelines.build_bi_shards; from apache_beam.io.gcp.gcsfilesystem import GCSFileSystem; import distributed; print('worker image ok', cv2.__version__)"

COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
