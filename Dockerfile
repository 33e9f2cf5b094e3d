# Worker image for running the pipelines on Dataflow, Spark or Flink (portable runners with
# --environment_type DOCKER). Build it where Docker and the network are available:
#   docker build -t REGISTRY/forgery-shards-worker:0.1.0 .
# The Beam SDK image version must match the apache-beam version the job is launched with.
FROM apache/beam_python3.11_sdk:2.77.0

# CPU build of PyTorch (the pipelines do not train; the trainers need a CUDA image instead).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md /opt/forgery-shards/
COPY pipelines /opt/forgery-shards/pipelines
COPY blending /opt/forgery-shards/blending
COPY landmarks /opt/forgery-shards/landmarks
COPY shards /opt/forgery-shards/shards
COPY trainers /opt/forgery-shards/trainers
RUN pip install --no-cache-dir /opt/forgery-shards && \
    python -c "import mediapipe, cv2, pipelines.build_bi_shards; print('worker image ok', cv2.__version__)"
