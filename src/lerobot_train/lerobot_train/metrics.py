"""What a person watching a training run sees: the progress bar, `metrics.csv`, TensorBoard, `training_curves.png`.

Per optimizer update the loop records the loss (and the policy's sub-losses, e.g. ACT's `l1_loss`/`kld_loss`), the
gradient norm before clipping, the learning rate and where the time went: `dataloading_s` (waiting for the
DataLoader), `preprocessing_s` (normalisation and device transfer), `update_s` (forward, backward, optimizer).
Every `log_freq` updates the averages over that window are written as one CSV row (and to TensorBoard when the
`tensorboard` package is installed) with the counters upstream prints (step, samples, episodes, epochs), and the
PNG of the curves is redrawn from the CSV. A resumed run keeps appending to the same CSV: rows logged after the
checkpoint it resumes from are dropped first, so the curve has no duplicated steps.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"
EVAL_CSV = "eval_metrics.csv"
CURVES_PNG = "training_curves.png"

# Counters first, then timings, then everything else in the order first seen.
_LEADING_COLUMNS = ("step", "samples", "episodes", "epochs", "loss", "grad_norm", "lr", "samples_per_s",
                    "dataloading_s", "preprocessing_s", "update_s", "step_s", "data_fraction")


@dataclass
class RunCounters:
    """How much data one update consumes, to turn a step count into samples / episodes / epochs seen."""

    batch_size: int  # per process and micro-batch
    world_size: int
    grad_accum_steps: int
    num_frames: int
    num_episodes: int

    @property
    def samples_per_step(self) -> int:
        return self.batch_size * self.world_size * self.grad_accum_steps

    def at(self, step: int) -> dict[str, float]:
        samples = step * self.samples_per_step
        epochs = samples / max(1, self.num_frames)
        return {"step": step, "samples": samples, "episodes": epochs * self.num_episodes, "epochs": epochs}


@dataclass
class MetricsWindow:
    """Running sums of the per-update values since the last log line."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def averages(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()
        self.started = time.perf_counter()


def summarize_window(window: MetricsWindow, counters: RunCounters, step: int) -> dict[str, float]:
    """One log row: counters at `step` plus the window's averages and its throughput."""
    row: dict[str, float] = dict(counters.at(step))
    avg = window.averages()
    row.update(avg)
    step_s = avg.get("dataloading_s", 0.0) + avg.get("preprocessing_s", 0.0) + avg.get("update_s", 0.0)
    row["step_s"] = step_s
    row["samples_per_s"] = counters.samples_per_step / step_s if step_s > 0 else float("nan")
    row["data_fraction"] = avg.get("dataloading_s", 0.0) / step_s if step_s > 0 else float("nan")
    return row


def format_row(row: dict[str, float]) -> str:
    """The log line, upstream's abbreviations: `step:200 smpl:1K ep:3 epch:0.10 loss:0.512 grdn:3.1 lr:1.0e-05 ...`."""
    parts = [f"step:{_big(row['step'])}", f"smpl:{_big(row['samples'])}", f"ep:{_big(row['episodes'])}",
             f"epch:{row['epochs']:.2f}"]
    if "loss" in row:
        parts.append(f"loss:{row['loss']:.3f}")
    if "grad_norm" in row:
        parts.append(f"grdn:{row['grad_norm']:.3f}")
    if "lr" in row:
        parts.append(f"lr:{row['lr']:0.1e}")
    parts += [f"updt_s:{row.get('update_s', 0.0):.3f}", f"data_s:{row.get('dataloading_s', 0.0):.3f}",
              f"smpl/s:{row['samples_per_s']:.1f}"]
    extra = [k for k in row if k not in _LEADING_COLUMNS and k != "gpu_mem_gb"]
    parts += [f"{k}:{row[k]:.3f}" for k in extra]
    if "gpu_mem_gb" in row:
        parts.append(f"gpu_mem:{row['gpu_mem_gb']:.1f}GB")
    return " ".join(parts)


def _big(n: float) -> str:
    n = float(n)
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.0f}{unit}"
    return f"{n:.0f}"


class CsvLog:
    """A CSV of dict rows whose columns can grow (a new metric appears): the file is rewritten then (it is small)."""

    def __init__(self, path: Path, resume_after_step: int | None = None):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = [dict(r) for r in csv.DictReader(f)]
            if resume_after_step is not None:
                kept = [r for r in self.rows if _as_float(r.get("step")) <= resume_after_step]
                if len(kept) != len(self.rows):
                    self.rows = kept
                    self._rewrite(self._columns(self.rows))
        self.columns = self._columns(self.rows)

    @staticmethod
    def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        lead = [c for c in _LEADING_COLUMNS if c in seen]
        return lead + [c for c in seen if c not in lead]

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file():
            self.columns = self._columns(self.rows)
            self._rewrite(self.columns)
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)

    def _rewrite(self, columns: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)

    def series(self, column: str) -> tuple[list[float], list[float]]:
        """(steps, values) of one column, skipping rows without it."""
        xs, ys = [], []
        for r in self.rows:
            y = _as_float(r.get(column))
            if not math.isnan(y):
                xs.append(_as_float(r.get("step")))
                ys.append(y)
        return xs, ys


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def plot_training_curves(train: CsvLog, path: Path, evals: CsvLog | None = None, title: str = "") -> Path:
    """Draw loss (with sub-losses), gradient norm, learning rate, throughput (and eval success) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub_losses = [c for c in train.columns if c.endswith("_loss") and c != "loss"]
    panels = [("loss", ["loss", *sub_losses], True), ("gradient norm (before clipping)", ["grad_norm"], False),
              ("learning rate", ["lr"], False), ("samples / s", ["samples_per_s"], False),
              ("time in data loading", ["data_fraction"], False)]
    if evals is not None and evals.rows:
        panels.append(("evaluation", ["pc_success", "avg_sum_reward"], False))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.3 * len(panels)), sharex=True, squeeze=False)
    for ax, (label, columns, log_scale) in zip(axes[:, 0], panels):
        source = evals if label == "evaluation" else train
        drawn = False
        for column in columns:
            xs, ys = source.series(column)
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=column)
                drawn = True
        values = [y for c in columns for y in source.series(c)[1]]
        if drawn and log_scale and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_yscale("log")  # losses span decades over a run
        if label == "time in data loading":
            ax.axhline(0.1, color="grey", linestyle="--", linewidth=0.8, label="10 %")
            ax.set_ylim(0, 1)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if drawn and (len(columns) > 1 or label == "time in data loading"):
            ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("step (optimizer updates)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


class TensorBoardLog:
    """Scalars to TensorBoard event files under `<output_dir>/tensorboard`, only when `tensorboard` is installed."""

    def __init__(self, log_dir: Path):
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional; the CSV and PNG carry the same numbers
            log.debug("tensorboard is not installed: no event files (metrics.csv has the same values)")
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, row: dict[str, Any], prefix: str = "train") -> None:
        if self.writer is None:
            return
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class TrainingMonitor:
    """Everything the loop reports to: the tqdm bar (every update), CSV/TensorBoard/log line (every log_freq),
    the curves PNG (at most every `plot_min_interval_s` on log steps, always on save and at the end).
    Only rank 0 makes one; other ranks report nowhere."""

    def __init__(self, output_dir: Path, counters: RunCounters, total_steps: int, start_step: int,
                 title: str = "", plot_min_interval_s: float = 10.0, show_bar: bool = True):
        from tqdm import tqdm

        self.output_dir = Path(output_dir)
        self.counters = counters
        self.title = title
        self.plot_min_interval_s = plot_min_interval_s
        self.window = MetricsWindow()
        self.csv = CsvLog(self.output_dir / METRICS_CSV, resume_after_step=start_step)
        self.eval_csv = CsvLog(self.output_dir / EVAL_CSV, resume_after_step=start_step)
        self.tensorboard = TensorBoardLog(self.output_dir / "tensorboard")
        self._last_plot = -math.inf
        self.bar = tqdm(total=total_steps, initial=start_step, desc="Training", unit="step", dynamic_ncols=True,
                        disable=not show_bar)

    def record_update(self, values: dict[str, Any]) -> None:
        self.window.add(values)
        self.bar.update(1)
        loss, grad = values.get("loss"), values.get("grad_norm")
        self.bar.set_postfix_str(f"loss={loss:.3f} grdn={grad:.2f} lr={values.get('lr', 0.0):.1e}"
                                 if loss is not None and grad is not None else "", refresh=False)

    def log(self, step: int) -> dict[str, float]:
        """Close the window: one CSV row, one log line, TensorBoard, maybe the PNG. Returns the row."""
        row = summarize_window(self.window, self.counters, step)
        self.window.reset()
        self.csv.append(row)
        self.tensorboard.write(row)
        self.bar.set_postfix_str(f"loss={row.get('loss', float('nan')):.3f} grdn={row.get('grad_norm', float('nan')):.2f} "
                                 f"lr={row.get('lr', 0.0):.1e} smpl/s={row['samples_per_s']:.1f} "
                                 f"data={100 * row['data_fraction']:.0f}%")
        log.info(format_row(row))
        if time.monotonic() - self._last_plot >= self.plot_min_interval_s:
            self.plot()
        return row

    def log_eval(self, step: int, results: dict[str, float]) -> None:
        row = {"step": step, **results}
        self.eval_csv.append(row)
        self.tensorboard.write(row, prefix="eval")
        log.info("eval at step %d: %s", step, " ".join(f"{k}:{v:.3f}" for k, v in results.items()))

    def plot(self) -> Path | None:
        if not self.csv.rows:
            return None
        self._last_plot = time.monotonic()
        return plot_training_curves(self.csv, self.output_dir / CURVES_PNG, self.eval_csv, self.title)

    def close(self) -> None:
        self.bar.close()
        self.plot()
        self.tensorboard.close()
