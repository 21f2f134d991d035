"""The errors this package raises about datasets: one family under `DatasetError`.

Each class also derives from the builtin a caller would naturally catch (ValueError for bad content or bad
requests, RuntimeError for a busy dataset, FileExistsError for a folder that is taken), so code written against
the builtins keeps working. Messages name the file (relative to the dataset root when there is one) and say what
was expected.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base of every error about a dataset: its files, or what was asked of it."""


class DatasetFormatError(DatasetError, ValueError):
    """A file of the dataset is missing, unreadable, or does not follow the LeRobotDataset v3.0 format."""


class DatasetVersionError(DatasetFormatError):
    """The dataset is an older (v2.x or v1.x) LeRobotDataset and must be converted first."""


class UnsafePathError(DatasetFormatError):
    """A path taken from the dataset's metadata would leave the dataset folder (absolute, `..`, a symlink out)."""


class DatasetToolError(DatasetError, ValueError):
    """A dataset cannot be edited as asked (bad request, mismatching datasets, broken metadata)."""


class DatasetBusyError(DatasetError, RuntimeError):
    """Another writer or tool has the dataset open, or an interrupted save must be repaired before it is used."""


class DatasetExistsError(DatasetError, FileExistsError):
    """A new dataset was asked for in a folder that already holds episodes or other files."""


__all__ = [
    "DatasetBusyError",
    "DatasetError",
    "DatasetExistsError",
    "DatasetFormatError",
    "DatasetToolError",
    "DatasetVersionError",
    "UnsafePathError",
]
