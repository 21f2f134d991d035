"""Unit transforms: exact values, exact round trips, and rejection of non-invertible ones."""
import math

import numpy as np
import pytest

from lerobot_recorder.transforms import (
    DEG2RAD,
    IDENTITY,
    RAD2DEG,
    Transform,
    TransformError,
    VectorTransform,
    linear_transform,
    named_transform,
    scale_transform,
)


def test_named_transforms_values():
    assert RAD2DEG.forward(math.pi) == pytest.approx(180.0, abs=1e-12)
    assert RAD2DEG.forward(-math.pi / 2) == pytest.approx(-90.0, abs=1e-12)
    assert DEG2RAD.forward(90.0) == pytest.approx(math.pi / 2, abs=1e-15)
    assert IDENTITY.forward(1.234) == 1.234
    assert named_transform("rad2deg") is RAD2DEG
    assert scale_transform(100).forward(0.37) == pytest.approx(37.0)
    assert linear_transform(2.0, -1.0).forward(3.0) == 5.0
    assert linear_transform(2.0, -1.0).inverse(5.0) == 3.0


def test_rad2deg_matches_numpy_degrees():
    x = np.linspace(-2 * math.pi, 2 * math.pi, 1001)
    forward = VectorTransform((RAD2DEG,)).forward(x[:, None])[:, 0]
    np.testing.assert_allclose(forward, np.degrees(x), rtol=1e-15, atol=1e-12)


@pytest.mark.parametrize(
    "transform",
    [IDENTITY, RAD2DEG, DEG2RAD, scale_transform(100), scale_transform(-0.001), linear_transform(3.5, 12.25),
     linear_transform(-1e3, 0.5)],
    ids=lambda t: t.describe(),
)
def test_round_trip_is_exact_to_float_tolerance(transform):
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, size=2000)
    vt = VectorTransform((transform,))
    back = vt.inverse(vt.forward(x[:, None]))[:, 0]
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-12)
    forth = vt.forward(vt.inverse(x[:, None]))[:, 0]
    np.testing.assert_allclose(forth, x, rtol=1e-12, atol=1e-9)


def test_vector_transform_on_vectors_and_chunks():
    vt = VectorTransform((RAD2DEG, RAD2DEG, scale_transform(100)))
    ros = np.array([math.pi / 2, -math.pi / 4, 0.25])
    np.testing.assert_allclose(vt.forward(ros), [90.0, -45.0, 25.0], atol=1e-12)
    chunk = np.array([[90.0, -45.0, 25.0], [0.0, 180.0, 100.0]])  # (horizon, dim) in dataset units
    np.testing.assert_allclose(vt.inverse(chunk), [[math.pi / 2, -math.pi / 4, 0.25], [0.0, math.pi, 1.0]], atol=1e-15)
    assert vt.forward(ros).dtype == np.float64


def test_vector_transform_rejects_wrong_length():
    vt = VectorTransform((RAD2DEG, RAD2DEG))
    with pytest.raises(ValueError, match="expected a last axis of 2 values, got shape \\(3,\\)"):
        vt.forward([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="got shape \\(\\)"):
        vt.inverse(1.0)


def test_non_invertible_or_bad_transforms_rejected():
    with pytest.raises(TransformError, match="not invertible"):
        scale_transform(0)
    with pytest.raises(TransformError, match="not invertible"):
        linear_transform(0.0, 1.0)
    with pytest.raises(TransformError, match="finite"):
        Transform("scale", float("nan"))
    with pytest.raises(TransformError, match="unknown transform 'rad2grad'"):
        named_transform("rad2grad")
