"""LeRobotDataset v3.0: the one place that knows the format (writer, reader, validation, tools).

Names are imported lazily so that `lerobot_dataset.format` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "writer": ("LeRobotDatasetWriter", "EpisodeSummary", "FrameValidationError", "EpisodeSaveError"),
    "recovery": ("recover",),
    "video": ("VideoEncoderConfig", "EncoderError", "EncoderStalledError", "EncoderHungError"),
    "reader": ("LeRobotDatasetReader", "DatasetMeta"),
    "errors": ("DatasetError", "DatasetFormatError", "DatasetVersionError", "UnsafePathError", "DatasetToolError",
               "DatasetBusyError", "DatasetExistsError"),
    "validate": ("validate_dataset", "ValidationReport"),
    "tools": ("delete_episodes", "remove_saved_episode"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
