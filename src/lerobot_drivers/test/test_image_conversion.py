"""numpy <-> sensor_msgs/Image and CompressedImage helpers (no cv_bridge), including a CDR round trip."""
import array

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from lerobot_drivers.image_conversion import (ImageConversionError, compressed_msg_to_rgb, image_msg_to_numpy,
                                              image_msg_to_rgb, numpy_to_compressed_msg, numpy_to_image_msg)

rng = np.random.default_rng(0)
RGB = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_round_trip_through_cdr(encoding):
    msg = numpy_to_image_msg(RGB, encoding, frame_id="cam")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (6, 10, 30, encoding)
    wire = deserialize_message(serialize_message(msg), Image)
    np.testing.assert_array_equal(image_msg_to_numpy(wire), RGB)
    assert wire.header.frame_id == "cam"


def test_bgr8_and_mono8_convert_to_rgb():
    np.testing.assert_array_equal(image_msg_to_rgb(numpy_to_image_msg(RGB[:, :, ::-1], "bgr8")), RGB)
    mono = RGB[:, :, 0]
    msg = numpy_to_image_msg(mono, "mono8")
    assert msg.step == 10
    np.testing.assert_array_equal(image_msg_to_numpy(msg), mono)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), np.stack([mono] * 3, axis=2))
    np.testing.assert_array_equal(image_msg_to_numpy(numpy_to_image_msg(mono[:, :, None], "mono8")), mono)


def test_padded_rows_honour_step():
    msg = Image(height=6, width=10, encoding="rgb8", step=32)
    padded = np.zeros((6, 32), np.uint8)
    padded[:, :30] = RGB.reshape(6, 30)
    padded[:, 30:] = 255
    msg.data = array.array("B", padded.tobytes())
    np.testing.assert_array_equal(image_msg_to_numpy(msg), RGB)


def test_errors_name_encoding_and_size():
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        numpy_to_image_msg(RGB, "yuv422")
    with pytest.raises(ImageConversionError, match=r"rgb8 needs an HxWx3 array, got shape \(6, 10\)"):
        numpy_to_image_msg(RGB[:, :, 0], "rgb8")
    with pytest.raises(ImageConversionError, match="uint8"):
        numpy_to_image_msg(RGB.astype(np.float32), "rgb8")
    bad = numpy_to_image_msg(RGB, "rgb8")
    bad.height = 7
    with pytest.raises(ImageConversionError, match=r"180 bytes but 7 rows x step 30 \(10x7 rgb8\) needs 210"):
        image_msg_to_numpy(bad)
    short = numpy_to_image_msg(RGB, "rgb8")
    short.step = 20
    with pytest.raises(ImageConversionError, match="step 20 is smaller than width 10 x 3"):
        image_msg_to_numpy(short)


def test_compressed_png_is_lossless_and_jpeg_is_close():
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :24] = (220, 40, 30)
    image[:, 24:] = (20, 60, 210)
    png = numpy_to_compressed_msg(image, "png")
    assert png.format == "png"
    wire = deserialize_message(serialize_message(png), CompressedImage)
    np.testing.assert_array_equal(compressed_msg_to_rgb(wire), image)
    jpeg = numpy_to_compressed_msg(image, "jpeg", quality=95)
    assert jpeg.format == "jpeg"
    decoded = compressed_msg_to_rgb(jpeg)
    assert decoded.shape == image.shape
    assert np.abs(decoded[4:-4, 4:20].astype(int) - image[4:-4, 4:20]).max() <= 8  # colour order kept
    # bgr8 input encodes the same picture
    np.testing.assert_array_equal(compressed_msg_to_rgb(numpy_to_compressed_msg(image[:, :, ::-1], "png", "bgr8")),
                                  image)
    with pytest.raises(ImageConversionError, match="unsupported compressed format 'webm'"):
        numpy_to_compressed_msg(image, "webm")
    with pytest.raises(ImageConversionError, match="could not decode 3 bytes"):
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=b"abc"))
