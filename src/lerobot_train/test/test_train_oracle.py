"""Upstream lerobot 0.4.4 as the judge of the training files: its checkpoint resumes here (weights, optimizer, RNG
restored exactly, then training continues), and the train_config.json written here is read by upstream's parser."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train_testlib as tl  # noqa: E402

from oracle import oracle_env  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]


@pytest.fixture(scope="module")
def upstream_checkpoint(tmp_path_factory) -> Path:
    """Upstream's lerobot-train: the tiny ACT, 2 steps, on the tiny dataset; its checkpoints/000002."""
    out = tmp_path_factory.mktemp("upstream") / "run"
    flags = [f for f in tl.TINY_ACT_FLAGS]
    oracle_env.run_oracle("upstream_train.py", "train", "--dataset.repo_id=local/tiny_dataset",
                          f"--dataset.root={tl.tiny_dataset()}", "--dataset.video_backend=pyav", *flags, "--steps=2",
                          "--save_freq=2", "--batch_size=4", "--num_workers=0", "--log_freq=1", "--seed=3",
                          f"--output_dir={out}", timeout=900)
    return out / "checkpoints" / "000002"


def test_upstream_checkpoint_resumes_here(upstream_checkpoint, caplog):
    from lerobot_train.train import build_run
    from lerobot_train.train_config import parse_train_args

    argv = ["--resume=true", f"--config_path={upstream_checkpoint / 'pretrained_model' / 'train_config.json'}",
            "--steps=4"]
    run = build_run(parse_train_args(argv))
    weights = tl.tensors(upstream_checkpoint / "pretrained_model" / "model.safetensors")
    ours = run.policy.state_dict()
    assert set(weights) == set(ours)
    for name, value in weights.items():
        assert np.array_equal(ours[name].numpy(), value), name
    saved_opt = tl.tensors(upstream_checkpoint / "training_state" / "optimizer_state.safetensors")
    state = run.optimizer.state_dict()["state"]
    for key, value in saved_opt.items():
        _, index, name = key.split("/")
        assert np.array_equal(state[int(index)][name].numpy(), value), key
    rng = tl.tensors(upstream_checkpoint / "training_state" / "rng_state.safetensors")
    assert torch.equal(torch.get_rng_state(), torch.from_numpy(rng["torch_rng_state"]))
    assert run.start_step == 2 and run.sampler.state_dict() == {"epoch": 0, "start_index": 8}
    run.ctx.close()

    tl.run_train_in_process(argv)  # and it trains on to step 4 in upstream's layout
    output_dir = upstream_checkpoint.parents[1]
    record = json.loads((output_dir / "checkpoints/000004/training_state/training_step.json").read_text())
    assert record["step"] == 4 and record["dp_world_size"] == 1
    adam_steps = tl.tensors(output_dir / "checkpoints/000004/training_state/optimizer_state.safetensors")["state/0/step"]
    assert float(adam_steps) == 4.0  # upstream's 2 updates + ours


def test_upstream_reads_our_train_config(tmp_path):
    out = tmp_path / "ours"
    tl.run_train_in_process(tl.train_flags(out, "--policy.chunk_size=3", "--policy.n_action_steps=2", steps=1,
                                           save_freq=1))
    config = out / "checkpoints" / "000001" / "pretrained_model" / "train_config.json"
    parsed = tmp_path / "parsed.json"
    oracle_env.run_oracle("upstream_train.py", "parse-config", str(config), str(parsed))
    got = json.loads(parsed.read_text())
    assert got == {"policy_type": "act", "steps": 1, "batch_size": 4, "optimizer": "adamw", "lr": 1e-5,
                   "dataset_root": str(tl.tiny_dataset()), "chunk_size": 3}
