"""Import first: pins every numeric library to one thread, so figures are per core."""
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import cv2  # noqa: E402

cv2.setNumThreads(1)
