"""Image preprocessing of the official pipeline: resize to a square without keeping the aspect ratio
(bilinear, as mmcv.imresize / cv2), then ImageNet normalisation on the 0-255 scale, CHW float32."""
from __future__ import annotations

import cv2
import numpy as np

from ..config import IMAGE_MEAN, IMAGE_STD

_MEAN = np.array(IMAGE_MEAN, dtype=np.float32)
_STD = np.array(IMAGE_STD, dtype=np.float32)


def preprocess_image(rgb: np.ndarray, size: int) -> np.ndarray:
    """[H, W, 3] uint8 RGB -> [3, size, size] float32 normalised."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    return ((resized.astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1).copy()


def decode_image(data: bytes | np.ndarray, source: str = "image bytes") -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ... as the official loader: BGR via OpenCV) to RGB uint8
    [H, W, 3]; ``source`` names the input in the error."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else \
        np.asarray(data, dtype=np.uint8).reshape(-1)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise ValueError(f"cannot read image {source}: empty or not an image format OpenCV decodes")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path) -> np.ndarray:
    """Decode an image file as the official loader does (BGR via OpenCV) and return RGB uint8 [H, W, 3]."""
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    return decode_image(np.fromfile(str(path), dtype=np.uint8), str(path))
