"""Data-parallel training with torchrun on the CPU (2 processes, gloo): each rank trains on its own samples, the run
resumes bit-exact on the same world size, and a checkpoint resumes on another world size with a warning."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import train_testlib as tl  # noqa: E402

pytestmark = pytest.mark.slow


def torchrun(flags: list[str], sample_log: Path | None = None):
    env = tl.cli_env()
    if sample_log is not None:
        env["LEROBOT_TRAIN_SAMPLE_LOG"] = str(sample_log)
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lerobot_train.train", *flags], capture_output=True, text=True, timeout=900,
                          env=env, cwd=str(tl.WS))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def samples(log: Path) -> dict[int, list[int]]:
    """step -> frame indices this rank trained on."""
    out: dict[int, list[int]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        out.setdefault(entry["step"], []).extend(entry["index"])
    return out


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    out, log = root / "run", root / "samples"
    torchrun(tl.train_flags(out, steps=4, save_freq=2), sample_log=log)
    return out, log


def test_ranks_train_on_disjoint_samples_of_one_epoch_order(ddp_run):
    out, log = ddp_run
    rank0, rank1 = samples(log / "rank0.jsonl"), samples(log / "rank1.jsonl")
    assert sorted(rank0) == sorted(rank1) == [1, 2, 3, 4]
    for step in rank0:
        assert len(rank0[step]) == len(rank1[step]) == 4
        assert not set(rank0[step]) & set(rank1[step]), f"step {step}: both ranks trained on the same frames"
    seen = [i for step in rank0 for i in rank0[step] + rank1[step]]
    assert len(seen) == len(set(seen)) == 32  # 4 steps x 2 ranks x 4 samples, all different frames of the epoch
    record = json.loads((out / "checkpoints/000004/training_state/training_step.json").read_text())
    assert record["dp_world_size"] == 2 and record["batch_size"] == 4
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[1].split(",")[1] == "8"  # samples counts both ranks
    assert len(rows) == 5  # one writer (rank 0): a header and one row per step


def test_ddp_resume_is_bit_exact(ddp_run, tmp_path):
    out, log = ddp_run
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    shutil.rmtree(run / "checkpoints" / "000004")
    (run / "checkpoints" / "last").unlink()
    (run / "checkpoints" / "last").symlink_to("000002")
    torchrun(["--resume=true", f"--config_path={run}", f"--output_dir={run}"], sample_log=tmp_path / "samples")
    for name in ("pretrained_model/model.safetensors", "training_state/optimizer_state.safetensors"):
        tl.assert_same_tensors(out / "checkpoints/000004" / name, run / "checkpoints/000004" / name)
    resumed = samples(tmp_path / "samples" / "rank1.jsonl")
    assert resumed == {s: v for s, v in samples(log / "rank1.jsonl").items() if s > 2}


def test_resume_on_another_world_size_warns(ddp_run, tmp_path, caplog):
    out, _ = ddp_run
    run = tmp_path / "run"
    shutil.copytree(out, run, symlinks=True)
    shutil.rmtree(run / "checkpoints" / "000004")
    (run / "checkpoints" / "last").unlink()
    (run / "checkpoints" / "last").symlink_to("000002")
    with caplog.at_level(logging.WARNING):
        tl.run_train_in_process(["--resume=true", f"--config_path={run}", f"--output_dir={run}", "--steps=3"])
    assert any("world size 1 but the checkpoint was written with 2" in r.getMessage() for r in caplog.records)
    assert json.loads((run / "checkpoints/000003/training_state/training_step.json").read_text())["dp_world_size"] == 1
