"""Checkpoint folders and training_state/ files, EMA, and the metrics outputs, on a tiny real module (no policy)."""

from __future__ import annotations

import csv
import json
import os
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lerobot_train.data.sampler import TrainingStepRecord
from lerobot_train.metrics import CsvLog, MetricsWindow, RunCounters, format_row, plot_training_curves, summarize_window
from lerobot_train.optim import EMAConfig, ExponentialMovingAverage, clip_grad_norm
from lerobot_train.policies.optim import AdamConfig, AdamWConfig, DiffuserSchedulerConfig
from lerobot_train.training_state import (
    ResumableParts,
    TrainingStateError,
    commit_checkpoint,
    last_checkpoint_dir,
    list_checkpoints,
    load_training_state,
    partial_checkpoint_dir,
    read_training_step,
    rng_state_tensors,
    save_training_state,
    step_checkpoint_dir,
    step_identifier,
)


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.body(x))

    def get_optim_params(self):  # two groups, like ACT's backbone group
        return [{"params": list(self.body.parameters()), "lr": 1e-3}, {"params": list(self.head.parameters())}]


def train_some(model: nn.Module, optimizer, scheduler, steps: int, ema=None) -> None:
    for _ in range(steps):
        x = torch.randn(16, 5)
        loss = (model(x) - x[:, :2]).pow(2).mean() + 0.01 * torch.rand(()).item()
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = TwoLayers()
    optimizer = AdamWConfig(lr=1e-2).build(model.get_optim_params())
    scheduler = DiffuserSchedulerConfig(name="cosine", num_warmup_steps=3).build(optimizer, 20)
    ema = ExponentialMovingAverage(model, EMAConfig(enable=True, decay=0.9))
    return model, optimizer, scheduler, ema


def test_step_folders_and_last_link(tmp_path):
    assert step_identifier(200, 100_000) == "000200" and step_identifier(5, 12_345_678) == "00000005"
    final = step_checkpoint_dir(tmp_path, 1000, 50)
    assert final == tmp_path / "checkpoints" / "000050"
    partial = partial_checkpoint_dir(final)
    (partial / "pretrained_model").mkdir(parents=True)
    assert list_checkpoints(tmp_path) == [] and last_checkpoint_dir(tmp_path) is None  # partial ones do not count
    commit_checkpoint(partial, final)
    link = tmp_path / "checkpoints" / "last"
    assert link.is_symlink() and os.readlink(link) == "000050"  # relative, as upstream
    second = step_checkpoint_dir(tmp_path, 1000, 100)
    (partial_checkpoint_dir(second) / "pretrained_model").mkdir(parents=True)
    commit_checkpoint(partial_checkpoint_dir(second), second)
    assert os.readlink(link) == "000100" and last_checkpoint_dir(tmp_path) == second.resolve()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["000050", "000100"]


def test_training_state_round_trip_continues_identically(tmp_path):
    model, optimizer, scheduler, ema = fresh()
    train_some(model, optimizer, scheduler, 5, ema)
    record = TrainingStepRecord(step=5, dp_world_size=2, batch_size=16, grad_accum_steps=1)
    save_training_state(tmp_path, record, ResumableParts(optimizer, scheduler, ema))
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    files = sorted(p.name for p in (tmp_path / "training_state").iterdir())
    assert files == ["ema_state.safetensors", "optimizer_param_groups.json", "optimizer_state.safetensors",
                     "rng_state.safetensors", "scheduler_state.json", "training_step.json"]
    step_json = json.loads((tmp_path / "training_state" / "training_step.json").read_text())
    assert step_json["step"] == 5 and step_json["dp_world_size"] == 2 and step_json["batch_size"] == 16
    assert step_json["parallelism"]["dp_replicate"] == 2
    train_some(model, optimizer, scheduler, 4, ema)  # the uninterrupted continuation
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    expected_ema = {k: v.clone() for k, v in ema.state_dict().items()}

    model2, optimizer2, scheduler2, ema2 = fresh(seed=123)  # different init: everything must come from disk
    model2.load_state_dict(load_file(tmp_path / "weights.safetensors"))
    random.random(), np.random.rand(), torch.rand(3)  # move the generators: the checkpoint must restore them
    got = load_training_state(tmp_path, ResumableParts(optimizer2, scheduler2, ema2))
    assert (got.step, got.dp_world_size, got.batch_size, got.grad_accum_steps) == (5, 2, 16, 1)
    assert scheduler2.last_epoch == 5
    train_some(model2, optimizer2, scheduler2, 4, ema2)
    for k, v in expected.items():
        assert torch.equal(model2.state_dict()[k], v), k
    for k, v in expected_ema.items():
        assert torch.equal(ema2.state_dict()[k], v), k


def test_upstream_0_4_4_training_step_and_missing_files(tmp_path):
    state = tmp_path / "training_state"
    state.mkdir()
    (state / "training_step.json").write_text('{"step": 40}')
    record = read_training_step(tmp_path)
    assert record.step == 40 and record.dp_world_size is None and record.batch_size is None
    model, optimizer, scheduler, _ = fresh()
    with pytest.raises(TrainingStateError, match="rng_state.safetensors is missing"):
        load_training_state(tmp_path, ResumableParts(optimizer, scheduler))
    with pytest.raises(TrainingStateError, match="training_state is missing"):
        load_training_state(tmp_path / "nowhere", ResumableParts(optimizer))


def test_optimizer_that_does_not_fit_is_named(tmp_path):
    model, optimizer, scheduler, _ = fresh()
    train_some(model, optimizer, None, 1)
    save_training_state(tmp_path, TrainingStepRecord(step=1), ResumableParts(optimizer))
    one_group = AdamWConfig().build(model.parameters())
    with pytest.raises(TrainingStateError, match=r"optimizer_param_groups.json: 2 parameter groups, the policy being "
                                                 r"resumed has 1"):
        load_training_state(tmp_path, ResumableParts(one_group))
    adam = AdamConfig().build(model.get_optim_params())
    with pytest.raises(TrainingStateError, match="written by AdamW, but the run being resumed uses Adam"):
        load_training_state(tmp_path, ResumableParts(adam))
    other = nn.Linear(3, 3)
    small = AdamWConfig().build([{"params": [other.weight]}, {"params": [other.bias]}])
    with pytest.raises(TrainingStateError, match="group 0 has 4 parameters, the policy being resumed has 1"):
        load_training_state(tmp_path, ResumableParts(small))


def test_rng_state_uses_upstreams_keys(tmp_path):
    keys = set(rng_state_tensors())
    assert {"py_rng_version", "py_rng_state", "np_rng_state_values", "np_rng_state_index", "np_rng_has_gauss",
            "np_rng_cached_gaussian", "torch_rng_state"} <= keys


def test_ema_formula_and_applied_weights():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    ema = ExponentialMovingAverage(model, EMAConfig(enable=True, decay=0.5, warmup=False))
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.params["weight"], 0.5 * start + 0.5 * model.weight)
    raw = model.weight.detach().clone()
    with ema.applied_to(model):
        assert torch.allclose(model.weight, ema.params["weight"])
    assert torch.equal(model.weight, raw)  # restored afterwards
    warm = ExponentialMovingAverage(model, EMAConfig(enable=True, decay=0.999))
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0): early weights are not frozen
    with pytest.raises(ValueError, match="ema.decay must be in"):
        EMAConfig(decay=1.0)


def test_metrics_rows_csv_resume_and_png(tmp_path):
    counters = RunCounters(batch_size=4, world_size=2, grad_accum_steps=2, num_frames=160, num_episodes=4)
    window = MetricsWindow()
    window.add({"loss": 1.0, "grad_norm": 2.0, "lr": 1e-4, "dataloading_s": 0.01, "update_s": 0.09, "l1_loss": 0.5})
    window.add({"loss": 3.0, "grad_norm": 4.0, "lr": 1e-4, "dataloading_s": 0.03, "update_s": 0.07, "l1_loss": 0.7})
    row = summarize_window(window, counters, step=10)
    assert row["samples"] == 10 * 16 and row["epochs"] == pytest.approx(1.0) and row["episodes"] == pytest.approx(4)
    assert row["loss"] == 2.0 and row["step_s"] == pytest.approx(0.1)
    assert row["samples_per_s"] == pytest.approx(160.0) and row["data_fraction"] == pytest.approx(0.2)
    line = format_row(row)
    assert line.startswith("step:10 smpl:160 ep:4 epch:1.00 loss:2.000 grdn:3.000 lr:1.0e-04") and "l1_loss:0.600" in line

    log = CsvLog(tmp_path / "metrics.csv")
    for step in (10, 20, 30):
        log.append({**row, "step": step})
    log.append({**row, "step": 40, "new_metric": 1.5})  # a column appearing later rewrites the header
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["10", "20", "30", "40"] and rows[-1]["new_metric"] == "1.5"
    resumed = CsvLog(tmp_path / "metrics.csv", resume_after_step=20)  # rows after the checkpoint are dropped
    assert [r["step"] for r in resumed.rows] == ["10", "20"]
    png = plot_training_curves(resumed, tmp_path / "training_curves.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_robot_interface_from_flag_or_the_datasets_meta(tmp_path):
    from types import SimpleNamespace

    from lerobot_train.train import TrainingError, load_robot_interface
    from lerobot_train.train_config import TrainPipelineConfig

    dataset = SimpleNamespace(meta=SimpleNamespace(roots=[tmp_path]))
    assert load_robot_interface(TrainPipelineConfig(), dataset) is None  # recorded elsewhere: nothing to store
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "robot_interface.yaml").write_text("robot_type: so_follower\nfps: 30\n")
    assert load_robot_interface(TrainPipelineConfig(), dataset) == {"robot_type": "so_follower", "fps": 30}
    own = tmp_path / "mine.yaml"
    own.write_text("fps: 15\n")
    assert load_robot_interface(TrainPipelineConfig(robot_interface=str(own)), dataset) == {"fps": 15}
    with pytest.raises(TrainingError, match="--robot_interface .*nope.yaml: no such file"):
        load_robot_interface(TrainPipelineConfig(robot_interface=str(tmp_path / "nope.yaml")), dataset)
