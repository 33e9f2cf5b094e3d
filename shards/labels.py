"""The multi-class label space shared by every shard: 0 is real, then each method."""
from __future__ import annotations

METHOD_IDS: dict[str, int] = {
    "real": 0,
    "Deepfakes": 1,
    "Face2Face": 2,
    "FaceSwap": 3,
    "NeuralTextures": 4,
    "FaceShifter": 5,
    "DeepFakeDetection": 6,
    "Celeb-synthesis": 7,
    "bi": 8,             # Face X-ray blended images
    "sbi": 9,            # self-blended images (Shiohara & Yamasaki 2022)
}
"""Method name -> class id, stored as `method_id` in every sample's json."""


def method_id(method: str) -> int:
    """Class id of `method`; unknown methods are an error, so ids never shift silently."""
    try:
        return METHOD_IDS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHOD_IDS)}") from None
