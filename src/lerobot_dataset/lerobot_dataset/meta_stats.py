"""meta/stats.json: the dataset's feature statistics, `{feature: {stat: nested list}}`.

In memory each stat is a numpy array: float64, except `count` (int64). The statistics themselves (how they are
computed and aggregated) are in `stats.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import durable_io
from .errors import DatasetFormatError
from .format import stats_path
from .stats import Stats, stats_from_json, stats_to_json

__all__ = ["read_stats", "write_stats"]


def read_stats(root: Path | str, missing_ok: bool = True) -> dict[str, Stats]:
    """meta/stats.json as numpy arrays; {} when the file is missing and `missing_ok` (no episode saved yet)."""
    path = stats_path(root)
    if not path.is_file():
        if missing_ok:
            return {}
        raise DatasetFormatError(f"{root}: missing {path.name}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise DatasetFormatError(f"{path}: expected {{feature: {{stat: values}}}}")
    try:
        return stats_from_json(raw)
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f"{path}: a statistic is not numeric ({exc})") from None


def write_stats(root: Path | str, stats: Mapping[str, Mapping[str, Any]], fsync: bool = True) -> None:
    """Replace meta/stats.json atomically and durably (features in the order given)."""
    durable_io.write_json(stats_path(root), stats_to_json({k: {s: np.asarray(v) for s, v in per.items()} for k, per in stats.items()}), fsync)
