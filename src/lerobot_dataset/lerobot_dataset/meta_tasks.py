"""meta/tasks.parquet: the task strings of a dataset, row i = task_index i.

On disk (upstream LeRobot): a pandas frame with column `task_index` (int64) and the task string as its index,
named `task` (upstream HEAD) or unnamed, i.e. the column `__index_level_0__` (lerobot 0.4.4). Both are read;
HEAD's form is written (pandas writes the schema metadata `pd.read_parquet` needs to restore the index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import durable_io
from .errors import DatasetFormatError
from .format import TASKS_PATH, tasks_path

__all__ = ["read_tasks", "write_tasks"]

_TEXT_COLUMNS = ("task", "__index_level_0__")


def read_tasks(root: Path | str, missing_ok: bool = False) -> list[str]:
    """Task strings by task_index. A missing file is an empty list with `missing_ok` (a dataset with no episode
    yet), else a DatasetFormatError; so is an unreadable file, a missing column or task_index values that are
    not exactly 0..n-1."""
    path = tasks_path(root)
    if not path.is_file():
        if missing_ok:
            return []
        raise DatasetFormatError(f"{root}: missing {TASKS_PATH}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetFormatError(f"{path}: unreadable parquet ({exc})") from None
    names = table.column_names
    text_col = next((c for c in _TEXT_COLUMNS if c in names), None)
    if text_col is None:
        text_col = next((f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)), None)
    if text_col is None or "task_index" not in names:
        raise DatasetFormatError(f"{path}: expected a 'task_index' column and a task string column ('task'), got {names}")
    texts = table.column(text_col).to_pylist()
    indices = table.column("task_index").to_pylist()
    tasks: list[str | None] = [None] * len(texts)
    for idx, text in zip(indices, texts):
        if not isinstance(idx, int) or not 0 <= idx < len(texts) or tasks[idx] is not None or text is None:
            raise DatasetFormatError(
                f"{path}: task_index values must be 0..{len(texts) - 1} without repeats, each with a task, got {indices}"
            )
        tasks[idx] = str(text)
    return [str(t) for t in tasks]


def write_tasks(root: Path | str, tasks: list[str], fsync: bool = True) -> None:
    """Replace meta/tasks.parquet atomically: column task_index + pandas index `task` (row order == task_index)."""
    import pandas as pd  # writing only: pandas stores the index metadata upstream's pd.read_parquet expects

    if len(set(tasks)) != len(tasks):
        dupes = sorted({t for t in tasks if tasks.count(t) > 1})
        raise DatasetFormatError(f"{TASKS_PATH}: tasks must be unique, {dupes} appear more than once")
    frame = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)}, index=pd.Index(list(tasks), name="task"))
    with durable_io.atomic_output(tasks_path(root), fsync) as tmp:
        frame.to_parquet(tmp)
