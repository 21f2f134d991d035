"""Deterministic synthetic episodes shared by both sides of the compatibility tests (numpy only).

The same (episode, frame) always gives the same state, action and camera images, so a test in the main venv can
regenerate exactly what the oracle script fed to upstream's writer (and vice versa). Camera frames are smooth
gradients plus a bright square whose position encodes the frame number, so decoding the wrong frame is visible
even after lossy video compression.
"""

from __future__ import annotations

import numpy as np

FPS = 30
MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
TASKS = ["pick the red cube", "place the cube in the bin", "push the block to the goal"]
# Episode lengths and task per episode: lengths differ so episode boundaries fall at irregular indices.
EPISODE_LENGTHS = [14, 22, 9, 17, 25, 12]
EPISODE_TASKS = [0, 1, 0, 2, 1, 2]
CAMERAS = {"observation.images.front": (64, 80), "observation.images.wrist": (72, 96)}
IMAGE_KEY = "observation.images.overhead"
IMAGE_HW = (32, 40)


def features(camera_dtype: str = "video") -> dict:
    names = [f"{m}.pos" for m in MOTORS]
    feats = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
    }
    for key, (h, w) in CAMERAS.items():
        feats[key] = {"dtype": camera_dtype, "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    h, w = IMAGE_HW
    feats[IMAGE_KEY] = {"dtype": "image", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    return feats


def joint_values(episode: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
    t = frame / FPS
    phase = np.arange(6, dtype=np.float64)
    state = 30.0 * np.sin(2 * np.pi * (0.3 + 0.1 * episode) * t + phase) + 5.0 * episode
    action = state + 2.0 * np.cos(2 * np.pi * 0.7 * t + phase)
    state[5] = 50 + 40 * np.sin(t + episode)  # gripper 0..100
    action[5] = 50 + 40 * np.sin(t + episode + 0.2)
    return state.astype(np.float32), action.astype(np.float32)


def camera_frame(key_salt: int, episode: int, frame: int, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), dtype=np.float64)
    img[..., 0] = 40 + 120 * x / w + 10 * key_salt
    img[..., 1] = 40 + 120 * y / h + 7 * episode
    img[..., 2] = 90 + 60 * np.sin((x + y) / 9.0 + 0.4 * frame)
    size = max(6, h // 6)
    cx = (5 + 4 * frame + 11 * episode) % (w - size)
    cy = (3 + 3 * frame + 5 * key_salt) % (h - size)
    img[cy : cy + size, cx : cx + size] = (250, 245, 20)
    return np.clip(img, 0, 255).astype(np.uint8)


def frame_dict(episode: int, frame: int, camera_dtype: str = "video") -> dict:
    """All feature values of one frame, HWC uint8 cameras, without the task."""
    state, action = joint_values(episode, frame)
    out = {"observation.state": state, "action": action}
    for salt, (key, hw) in enumerate(CAMERAS.items()):
        out[key] = camera_frame(salt, episode, frame, hw)
    out[IMAGE_KEY] = camera_frame(7, episode, frame, IMAGE_HW)
    return out
