"""Offline training of LeRobot-compatible policies from LeRobotDataset v3.0 (never imports rclpy).

`from lerobot_train import load_policy` is the public inference API (see inference.py). Importing the package is
cheap: torch and the policies load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lerobot_train.inference import LoadedPolicy, load_policy

__all__ = ["LoadedPolicy", "load_policy"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lerobot_train import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'lerobot_train' has no attribute {name!r}")
