"""Image decoding, the InputSpec preprocessing and training augmentation (numpy/cv2).

``preprocess`` is the exact formula of :class:`protocols.InputSpec`; agents do
the same, which the golden inputs check on every device.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from protocols import InputSpec

from .errors import DatasetError

U8Image = npt.NDArray[np.uint8]
F32Array = npt.NDArray[np.float32]


def decode_image(data: bytes) -> U8Image | None:
    """Decode encoded image bytes to HxWx3 BGR uint8, or None if they are not a whole image."""
    if data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return None  # truncated JPEG: some decoders return a half-grey picture instead of failing
    if not data:
        return None
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[0] < 2 or img.shape[1] < 2:
        return None
    return np.ascontiguousarray(img, dtype=np.uint8)


def read_image(path: Path) -> U8Image:
    """Read and decode one image file as BGR uint8; a DatasetError if it cannot be."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    img = decode_image(data)
    if img is None:
        raise DatasetError(f"cannot decode image {path} (changed since the dataset scan?)")
    return img


def resize_to_input(bgr: U8Image, spec: InputSpec) -> U8Image:
    """Resize a BGR frame to the input size (bilinear) and put it in the spec's colour order."""
    small = cv2.resize(bgr, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    if spec.color_order == "RGB":
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(small, dtype=np.uint8)


def normalize(img: npt.NDArray[np.generic], spec: InputSpec) -> F32Array:
    """``(img * scale - mean) / std`` per channel, HWC -> CHW float32."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    x = (img.astype(np.float32) * np.float32(spec.scale) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess(bgr: U8Image, spec: InputSpec) -> F32Array:
    """A camera frame (BGR uint8) -> the model's CHW float32 input, per the InputSpec."""
    return normalize(resize_to_input(bgr, spec), spec)


def augment(img: U8Image, rng: np.random.Generator) -> U8Image:
    """Training augmentation of an input-size image (numpy/cv2, seeded by ``rng``).

    Flip; rotation, zoom (0.85-1.35: up to a tight crop, as when an animal walks up to
    a camera) and shift; white balance, saturation, contrast and brightness jitter
    (a scene's light tints every frame); sometimes a slight blur (focus, motion).
    """
    h, w = img.shape[:2]
    out = img[:, ::-1] if rng.random() < 0.5 else img
    angle = rng.uniform(-12.0, 12.0)
    scale = rng.uniform(0.85, 1.35)
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    matrix[:, 2] += rng.uniform(-0.08, 0.08, size=2) * np.array([w, h])
    warped = cv2.warpAffine(
        np.ascontiguousarray(out),
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    if rng.random() < 0.3:
        warped = cv2.GaussianBlur(warped, (0, 0), rng.uniform(0.3, 0.9) * w / 64)
    x = np.asarray(warped, dtype=np.float32)
    x = x * rng.uniform(0.85, 1.15, size=3).astype(np.float32)  # white balance
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * np.float32(rng.uniform(0.6, 1.3))  # saturation
    x = (x - x.mean()) * np.float32(rng.uniform(0.7, 1.3)) + x.mean()  # contrast
    x = x * np.float32(rng.uniform(0.7, 1.2))  # brightness
    out = np.asarray(np.clip(x + 0.5, 0, 255), dtype=np.uint8)
    if rng.random() < 0.5:
        out = burn_in_text(out, rng)
    if rng.random() < 0.5:  # sensor noise that a bilinear downscale of a big frame keeps
        noisy = out + rng.normal(0.0, rng.uniform(1.0, 8.0), out.shape)
        out = np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)
    return out


def burn_in_text(img: U8Image, rng: np.random.Generator) -> U8Image:
    """A CCTV-style burnt-in camera name and timestamp (white, dark outline) at top or bottom.

    Every CCTV frame has one; without it in training a model can take the text band
    for evidence about the animal.
    """
    h, w = img.shape[:2]
    out = np.ascontiguousarray(img).copy()
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 16))
    text = f"CAM-{digits[:2]}  {digits[2:6]}-{digits[6:8]}-{digits[8:10]} " \
        f"{digits[10:12]}:{digits[12:14]}:{digits[14:16]}"
    base_w = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
    scale = rng.uniform(0.45, 0.95) * w / base_w  # the text spans about half to all the width
    height = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1]
    x = int(rng.integers(0, max(1, w // 8)))
    y = height + 2 if rng.random() < 0.7 else h - 3
    font = cv2.FONT_HERSHEY_SIMPLEX
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        cv2.putText(out, text, (x + dx, y + dy), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(out, text, (x, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


__all__ = [
    "augment",
    "burn_in_text",
    "decode_image",
    "normalize",
    "preprocess",
    "read_image",
    "resize_to_input",
]
