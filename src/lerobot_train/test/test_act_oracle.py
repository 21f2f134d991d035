"""ACT checkpoints cross with upstream LeRobot 0.4.4 (the oracle venv) in both directions, with equal outputs.

- An ACT checkpoint made by upstream (policy + processors, random FrozenBatchNorm statistics, two cameras) gives the
  same chunks and select_action sequences through our `load_policy` (max |diff| <= 1e-4 in dataset units), also
  with temporal ensembling, and also after converting it to the pre-v0.4 layout (statistics in model.safetensors).
- An ACT checkpoint saved here loads in upstream's `ACTPolicy.from_pretrained` + `make_pre_post_processors` with
  the same outputs as ours.
- The same parameters and normalized batch give the same training loss, sub-losses and gradients as upstream's
  `forward` (dropout 0; the VAE's sampling noise from the same seed).
One oracle process runs every upstream job of this module.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))
import policy_testlib as tl  # noqa: E402
from oracle import oracle_env  # noqa: E402

from lerobot_train import load_policy  # noqa: E402
from lerobot_train.policies.act import ACTConfig, ACTPolicy  # noqa: E402
from lerobot_train.policies.factory import make_pre_post_processors  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

TOL = 1e-4
SELECT_STEPS = 6  # > n_action_steps: the queue refills once


def _obs_npz(path: Path, batch: dict[str, np.ndarray], ticks: list[dict[str, np.ndarray]]) -> Path:
    arrays = dict(batch)
    for i, tick in enumerate(ticks):
        arrays.update({f"tick{i}|{k}": v for k, v in tick.items()})
    np.savez(path, **arrays)
    return path


def _with_config(src: Path, dst: Path, **changes) -> Path:
    """A copy of a checkpoint with config.json values changed (same weights and processors)."""
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config, indent=4))
    return dst


def _to_pre_v04_layout(src: Path, dst: Path) -> Path:
    """The checkpoint as upstream wrote it before v0.4: statistics as normalization-module buffers inside
    model.safetensors, no processor files."""
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    model = load_file(str(src / "model.safetensors"))
    stats = load_file(str(src / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    for flat, tensor in stats.items():
        key, stat = flat.rsplit(".", 1)
        if stat not in ("mean", "std"):
            continue  # ACT normalizes everything MEAN_STD; old checkpoints held only what they used
        buffer = key.replace(".", "_")
        if key == "action":
            model[f"normalize_targets.buffer_{buffer}.{stat}"] = tensor
            model[f"unnormalize_outputs.buffer_{buffer}.{stat}"] = tensor.clone()
        else:
            model[f"normalize_inputs.buffer_{buffer}.{stat}"] = tensor
    save_file(model, str(dst / "model.safetensors"))
    return dst


@pytest.fixture(scope="module")
def crossed(tmp_path_factory):
    """Checkpoints made on both sides and every upstream output the tests compare with (one oracle process)."""
    work = tmp_path_factory.mktemp("act_oracle")
    stats = tl.dataset_stats(seed=3)
    stats_npz = tl.save_stats_npz(stats, work / "stats.npz")
    batch_obs = tl.observation(batch=3, seed=11)
    ticks = [tl.observation(batch=2, seed=100 + i) for i in range(SELECT_STEPS)]
    obs_npz = _obs_npz(work / "obs.npz", batch_obs, ticks)

    # ours: a fresh ACT with non-trivial frozen BatchNorm, saved with its processors
    torch.manual_seed(5)
    config = ACTConfig(**tl.act_config_kwargs())
    ours = ACTPolicy(config)
    tl.randomize_frozen_batchnorm(ours, seed=6)
    ours_dir = work / "ours"
    ours.save_pretrained(ours_dir)
    pre, post = make_pre_post_processors(config, dataset_stats=stats)
    pre.save_pretrained(ours_dir)
    post.save_pretrained(ours_dir)

    # a normalized training batch with padded actions at the end of one sample
    rng = np.random.default_rng(21)
    train_batch = {k: torch.from_numpy(v) for k, v in tl.observation(batch=4, seed=22).items()}
    train_batch["action"] = torch.from_numpy(rng.normal(10.0, 25.0, (4, tl.TINY_ACT["chunk_size"], tl.ACTION_DIM)).astype(np.float32))
    pad = torch.zeros(4, tl.TINY_ACT["chunk_size"], dtype=torch.bool)
    pad[1, -2:] = True
    normalized = pre(train_batch)
    normalized["action_is_pad"] = pad
    batch_file = work / "train_batch.npz"
    np.savez(batch_file, **{k: v.numpy() for k, v in normalized.items() if isinstance(v, torch.Tensor)})

    upstream_dir = work / "upstream"
    jobs = [
        {"op": "make", "out": str(upstream_dir), "config": {**tl.TINY_ACT, **tl.feature_spec()}, "seed": 9,
         "stats": str(stats_npz)},
        {"op": "predict", "ckpt": str(upstream_dir), "obs": str(obs_npz), "out": str(work / "up_on_up.npz"),
         "select_steps": SELECT_STEPS},
        {"op": "predict", "ckpt": str(ours_dir), "obs": str(obs_npz), "out": str(work / "up_on_ours.npz"),
         "select_steps": SELECT_STEPS},
        {"op": "loss", "ckpt": str(ours_dir), "batch": str(batch_file), "seed": 7, "out": str(work / "up_loss.safetensors")},
    ]
    # the upstream checkpoint with temporal ensembling switched on in its config.json (made after "make")
    ensemble_dir = work / "upstream_ensemble"
    jobs_file = work / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    oracle_env.run_oracle("act_upstream.py", str(jobs_file))
    _with_config(upstream_dir, ensemble_dir, temporal_ensemble_coeff=0.01, n_action_steps=1)
    jobs_file.write_text(json.dumps([
        {"op": "predict", "ckpt": str(ensemble_dir), "obs": str(obs_npz), "out": str(work / "up_on_ensemble.npz"),
         "select_steps": SELECT_STEPS},
    ]))
    oracle_env.run_oracle("act_upstream.py", str(jobs_file))
    return {
        "work": work, "ours_dir": ours_dir, "upstream_dir": upstream_dir, "ensemble_dir": ensemble_dir,
        "batch_obs": batch_obs, "ticks": ticks, "batch_file": batch_file,
        "up_on_up": dict(np.load(work / "up_on_up.npz")), "up_on_ours": dict(np.load(work / "up_on_ours.npz")),
        "up_on_ensemble": dict(np.load(work / "up_on_ensemble.npz")),
        "up_loss": load_file(str(work / "up_loss.safetensors")),
    }


def _ours_outputs(ckpt: Path, crossed: dict) -> tuple[np.ndarray, np.ndarray]:
    policy = load_policy(ckpt)
    chunk = policy.predict_action_chunk(crossed["batch_obs"])
    policy.reset()
    select = np.stack([policy.select_action(tick) for tick in crossed["ticks"]])
    return chunk, select


def _assert_close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs upstream {theirs.shape}"
    diff = float(np.abs(ours - theirs).max())
    # values are in degrees (tens); 1e-4 is far below anything a robot could act on
    assert diff <= TOL, f"{what}: max |ours - upstream| = {diff}"


def test_upstream_checkpoint_gives_the_same_chunks_and_actions(crossed):
    chunk, select = _ours_outputs(crossed["upstream_dir"], crossed)
    assert chunk.shape == (3, tl.TINY_ACT["chunk_size"], tl.ACTION_DIM)
    assert np.abs(chunk).max() > 1.0, "outputs should be in dataset units (degrees), not normalized"
    _assert_close(chunk, crossed["up_on_up"]["chunk"], "predict_action_chunk")
    _assert_close(select, crossed["up_on_up"]["select"], "select_action over a queue refill")


def test_upstream_checkpoint_with_temporal_ensembling(crossed):
    _, select = _ours_outputs(crossed["ensemble_dir"], crossed)
    _assert_close(select, crossed["up_on_ensemble"]["select"], "temporally ensembled select_action")
    # ensembling really averages: the second action differs from the plain chunk's first action of tick 1
    policy = load_policy(crossed["ensemble_dir"])
    plain_first = policy.predict_action_chunk(crossed["ticks"][1])[:, 0]
    assert np.abs(select[1] - plain_first).max() > 1e-3


def test_our_checkpoint_loads_in_upstream_with_the_same_outputs(crossed):
    chunk, select = _ours_outputs(crossed["ours_dir"], crossed)
    _assert_close(chunk, crossed["up_on_ours"]["chunk"], "upstream on our checkpoint: chunk")
    _assert_close(select, crossed["up_on_ours"]["select"], "upstream on our checkpoint: select_action")


def test_training_loss_and_gradients_match_upstream(crossed):
    policy = ACTPolicy.from_pretrained(crossed["ours_dir"])
    data = np.load(crossed["batch_file"])
    batch = {k: torch.from_numpy(data[k]) for k in data.files}
    policy.train()
    torch.manual_seed(7)
    loss, info = policy.forward(batch)
    loss.backward()
    up = crossed["up_loss"]
    assert info["kld_loss"] > 0 and info["l1_loss"] > 0
    assert loss.item() == pytest.approx(up["loss"].item(), rel=1e-5, abs=1e-6)
    assert info["l1_loss"] == pytest.approx(up["l1_loss"].item(), rel=1e-5, abs=1e-6)
    assert info["kld_loss"] == pytest.approx(up["kld_loss"].item(), rel=1e-5, abs=1e-6)
    grads = {n: p.grad for n, p in policy.named_parameters() if p.grad is not None}
    upstream_grads = {k.split("|", 1)[1]: v for k, v in up.items() if k.startswith("grad|")}
    assert set(grads) == set(upstream_grads)
    for name, grad in grads.items():
        ref = upstream_grads[name]
        scale = float(ref.abs().max()) + 1e-6
        assert float((grad - ref).abs().max()) <= 1e-4 * scale + 1e-7, name


def test_pre_v04_checkpoint_layout_loads(crossed):
    legacy = _to_pre_v04_layout(crossed["upstream_dir"], crossed["work"] / "legacy")
    assert not list(legacy.glob("policy_*processor*"))
    chunk, select = _ours_outputs(legacy, crossed)
    _assert_close(chunk, crossed["up_on_up"]["chunk"], "pre-v0.4 layout: chunk")
    _assert_close(select, crossed["up_on_up"]["select"], "pre-v0.4 layout: select_action")
