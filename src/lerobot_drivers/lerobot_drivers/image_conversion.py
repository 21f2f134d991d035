"""numpy <-> sensor_msgs/Image and CompressedImage, without cv_bridge.

The PyPI cv_bridge is broken on numpy 2 / OpenCV 5 (see spec ros2_jazzy_from_pypi.md §7), and the conversion is a
few lines of numpy anyway. Arrays are HxWx3 uint8 for colour encodings and HxW uint8 for mono8. Rows in a message may
be padded (`step` > width * channels); decoding honours `step`, encoding always writes unpadded rows.
"""
from __future__ import annotations

import numpy as np

from sensor_msgs.msg import CompressedImage, Image

# encoding -> channels of a uint8 pixel
ENCODING_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
COMPRESSED_FORMATS = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}


class ImageConversionError(ValueError):
    """An image or message does not match the encoding/size it claims."""


def _as_uint8(data) -> np.ndarray:
    """Zero-copy uint8 view of a message's data field (array.array, bytes or a list from hand-built messages)."""
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _check_encoding(encoding: str) -> int:
    if encoding not in ENCODING_CHANNELS:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODING_CHANNELS)}")
    return ENCODING_CHANNELS[encoding]


def _check_array(image: np.ndarray, encoding: str) -> np.ndarray:
    channels = _check_encoding(encoding)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageConversionError(f"encoding {encoding} needs a uint8 array, got dtype {image.dtype}")
    if channels == 1:
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim != 2:
            raise ImageConversionError(f"encoding mono8 needs an HxW (or HxWx1) array, got shape {image.shape}")
    elif image.ndim != 3 or image.shape[2] != channels:
        raise ImageConversionError(f"encoding {encoding} needs an HxWx{channels} array, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageConversionError(f"image of shape {image.shape} is empty")
    return image


def numpy_to_image_msg(image: np.ndarray, encoding: str = "rgb8", stamp=None, frame_id: str = "") -> Image:
    """Build a sensor_msgs/Image from an HxWxC (or HxW for mono8) uint8 array; `stamp` is a builtin_interfaces Time."""
    image = _check_array(image, encoding)
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * ENCODING_CHANNELS[encoding]
    # bytes is the fast path for the generated setter (a list would cost ~20 ms per 640x480 frame).
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def image_msg_to_numpy(msg: Image) -> np.ndarray:
    """View a sensor_msgs/Image as HxWxC (HxW for mono8) uint8 in its own encoding (no colour conversion)."""
    channels = _check_encoding(msg.encoding)
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageConversionError(
            f"image step {msg.step} is smaller than width {msg.width} x {channels} channels ({msg.encoding})")
    expected = msg.step * msg.height
    data = _as_uint8(msg.data)
    if data.size != expected:
        raise ImageConversionError(
            f"image data has {data.size} bytes but {msg.height} rows x step {msg.step} ({msg.width}x{msg.height} "
            f"{msg.encoding}) needs {expected}")
    rows = data.reshape(msg.height, msg.step)[:, :row_bytes]
    if channels == 1:
        return rows.reshape(msg.height, msg.width)
    return rows.reshape(msg.height, msg.width, channels)


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """HxWx3 RGB uint8 from an rgb8, bgr8 or mono8 message (copies only when a conversion is needed)."""
    image = image_msg_to_numpy(msg)
    if msg.encoding == "bgr8":
        return image[:, :, ::-1]
    if msg.encoding == "mono8":
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def numpy_to_compressed_msg(image: np.ndarray, fmt: str = "jpeg", encoding: str = "rgb8", quality: int = 90,
                            stamp=None, frame_id: str = "") -> CompressedImage:
    """Encode an rgb8/bgr8/mono8 array as JPEG or PNG into a sensor_msgs/CompressedImage."""
    import cv2

    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(f"unsupported compressed format {fmt!r}; supported: {sorted(COMPRESSED_FORMATS)}")
    image = _check_array(image, encoding)
    if encoding == "rgb8":
        image = image[:, :, ::-1]  # OpenCV encoders expect BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if COMPRESSED_FORMATS[fmt] == ".jpg" else []
    ok, buffer = cv2.imencode(COMPRESSED_FORMATS[fmt], np.ascontiguousarray(image), params)
    if not ok:
        raise ImageConversionError(f"OpenCV failed to encode a {image.shape} image as {fmt}")
    msg = CompressedImage()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = "jpeg" if COMPRESSED_FORMATS[fmt] == ".jpg" else "png"
    msg.data = buffer.tobytes()
    return msg


def compressed_msg_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a CompressedImage (any format OpenCV reads: jpeg, png, ...) to HxWx3 RGB uint8."""
    import cv2

    data = _as_uint8(msg.data)
    if data.size == 0:
        raise ImageConversionError(f"compressed image (format {msg.format!r}) has no data")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageConversionError(f"OpenCV could not decode {data.size} bytes of compressed image "
                                   f"(format {msg.format!r})")
    return image[:, :, ::-1]
