"""The training loop end to end on a tiny dataset and a tiny ACT: files, resume to the bit, fine-tuning, evaluation
during training, and Hub checkpoints.

The Hub tests use `LocalHub`, a local stand-in for huggingface_hub's HfApi (there is no network here): it stores
repos as folders and implements the calls the trainer makes with their real signatures and pattern filtering.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import train_testlib as tl  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """6 steps with a warm-up + cosine schedule, EMA, 2 micro-batches per update, evaluation every 3 steps."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    tl.run_train_in_process(tl.train_flags(
        out, "--use_policy_training_preset=false", "--optimizer.type=adamw", "--optimizer.lr=1e-3",
        "--scheduler.type=diffuser", "--scheduler.num_warmup_steps=2", "--gradient_accumulation_steps=2",
        "--ema.enable=true", "--env.type=so101_reach", "--env.image_height=32", "--env.image_width=40",
        "--env.episode_length=4", "--eval.n_episodes=2", "--eval.batch_size=2", "--eval_freq=3"))
    return out


def test_checkpoint_files_as_upstream_plus_ours(uninterrupted):
    ckpt = uninterrupted / "checkpoints"
    assert os.readlink(ckpt / "last") == "000006"
    assert sorted(p.name for p in ckpt.iterdir()) == ["000003", "000006", "last"]
    pretrained = ckpt / "000006" / "pretrained_model"
    assert {p.name for p in pretrained.iterdir()} == {
        "config.json", "model.safetensors", "train_config.json", "robot_interface.json", "policy_preprocessor.json",
        "policy_postprocessor.json", "policy_preprocessor_step_3_normalizer_processor.safetensors",
        "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}
    assert (ckpt / "000006" / "pretrained_model_ema" / "model.safetensors").is_file()
    step = json.loads((ckpt / "000006" / "training_state" / "training_step.json").read_text())
    assert {k: step[k] for k in ("step", "dp_world_size", "batch_size", "grad_accum_steps")} == {
        "step": 6, "dp_world_size": 1, "batch_size": 4, "grad_accum_steps": 2}
    interface = json.loads((pretrained / "robot_interface.json").read_text())
    assert interface["fps"] == 30 and interface["robot_type"] == "so_follower" and interface["interface"] is None
    assert interface["features"][tl.CAMERA]["shape"] == [*tl.CAMERA_HW, 3]
    assert interface["features"]["action"]["names"][0] == "shoulder_pan.pos"
    train_config = json.loads((pretrained / "train_config.json").read_text())
    assert train_config["gradient_accumulation_steps"] == 2 and train_config["scheduler"]["type"] == "diffuser"
    assert not any(p.name.endswith(".partial") for p in ckpt.iterdir())


def test_metrics_csv_curves_and_evaluation(uninterrupted):
    rows = (uninterrupted / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    for column in ("step", "samples", "epochs", "loss", "grad_norm", "lr", "samples_per_s", "dataloading_s",
                   "update_s", "l1_loss", "kld_loss"):
        assert column in header
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]
    assert (uninterrupted / "training_curves.png").stat().st_size > 10_000
    evals = (uninterrupted / "eval_metrics.csv").read_text().splitlines()
    assert evals[0].startswith("step,pc_success") and [r.split(",")[0] for r in evals[1:]] == ["3", "6"]
    videos = sorted((uninterrupted / "eval" / "videos_step_000006").glob("*.mp4"))
    assert [v.name for v in videos] == ["eval_episode_0.mp4", "eval_episode_1.mp4"]


def test_resume_ends_bit_exact_equal_to_the_uninterrupted_run(uninterrupted, tmp_path):
    # the run "interrupted" after its step-3 checkpoint: everything after it is gone
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run, symlinks=True)
    shutil.rmtree(run / "checkpoints" / "000006")
    (run / "checkpoints" / "last").unlink()
    (run / "checkpoints" / "last").symlink_to("000003")
    tl.run_train_in_process(["--resume=true", f"--config_path={run}", f"--output_dir={run}"])
    for name in ("pretrained_model/model.safetensors", "pretrained_model_ema/model.safetensors",
                 "training_state/optimizer_state.safetensors", "training_state/ema_state.safetensors",
                 "training_state/rng_state.safetensors"):
        tl.assert_same_tensors(uninterrupted / "checkpoints/000006" / name, run / "checkpoints/000006" / name)
    for name in ("training_state/scheduler_state.json", "training_state/optimizer_param_groups.json"):
        assert (uninterrupted / "checkpoints/000006" / name).read_text() == (run / "checkpoints/000006" / name).read_text()
    # the resumed run's losses continue the curve exactly (columns 0..5: step .. grad_norm), without duplicates
    expected = [r.split(",")[:6] for r in (uninterrupted / "metrics.csv").read_text().splitlines()]
    got = [r.split(",")[:6] for r in (run / "metrics.csv").read_text().splitlines()]
    assert got == expected


def test_finetune_from_a_checkpoint_and_finished_runs(uninterrupted, tmp_path):
    pretrained = uninterrupted / "checkpoints" / "000006" / "pretrained_model"
    out = tmp_path / "finetune"
    tl.run_train_in_process([f"--dataset.root={tl.tiny_dataset()}", f"--policy.path={pretrained}",
                             "--policy.push_to_hub=false", "--steps=1", "--batch_size=2", "--num_workers=0",
                             f"--output_dir={out}"])
    config = json.loads((out / "checkpoints/000001/pretrained_model/config.json").read_text())
    assert config["dim_model"] == 16 and config["chunk_size"] == 4  # the checkpoint's architecture
    from lerobot_train.train import TrainingError

    with pytest.raises(TrainingError, match="is at step 6 and --steps is 6: nothing left to train"):
        tl.run_train_in_process(["--resume=true", f"--config_path={uninterrupted}",
                                 f"--output_dir={tmp_path / 'again'}"])


# ------------------------------------------------------------------------------------------------ Hub
class LocalHub:
    """Stand-in for huggingface_hub.HfApi (no network here): repos are folders, tags point at commit numbers."""

    def __init__(self, root: Path):
        self.root = root
        self.tags: dict[str, dict[str, int]] = {}
        self.commits: dict[str, int] = {}

    def _repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def create_repo(self, repo_id, *, private=None, exist_ok=False, repo_type=None, **_):
        self._repo(repo_id).mkdir(parents=True, exist_ok=exist_ok)
        self.tags.setdefault(repo_id, {})
        self.commits.setdefault(repo_id, 0)

    def upload_folder(self, *, repo_id, folder_path, path_in_repo=None, allow_patterns=None, repo_type=None, **_):
        folder = Path(folder_path)
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = f.relative_to(folder).as_posix()
            if allow_patterns and not any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(f.name, p) for p in allow_patterns):
                continue
            target = self._repo(repo_id) / (path_in_repo or "") / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        self.commits[repo_id] += 1

    def list_repo_refs(self, repo_id, *, repo_type=None, **_):
        return SimpleNamespace(branches=[SimpleNamespace(name="main")],
                               tags=[SimpleNamespace(name=t) for t in self.tags[repo_id]])

    def create_tag(self, repo_id, *, tag, tag_message=None, revision=None, repo_type=None, exist_ok=False):
        if tag in self.tags[repo_id] and not exist_ok:
            raise RuntimeError(f"tag {tag} exists")
        self.tags[repo_id][tag] = self.commits[repo_id]

    def delete_tag(self, repo_id, *, tag, repo_type=None, **_):
        del self.tags[repo_id][tag]

    def list_repo_files(self, repo_id, *, revision=None, repo_type=None, **_):
        repo = self._repo(repo_id)
        return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())

    def snapshot_download(self, repo_id, *, repo_type=None, revision=None, local_dir=None, allow_patterns=None, **_):
        for rel in self.list_repo_files(repo_id):
            if allow_patterns and not any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                continue
            target = Path(local_dir) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self._repo(repo_id) / rel, target)
        return str(local_dir)


def test_hub_checkpoints_final_model_and_resume_from_a_repo_id(tmp_path, monkeypatch):
    from lerobot_train import hub

    stand_in = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(hub, "_api", lambda api=None: stand_in)
    out = tmp_path / "run"
    tl.run_train_in_process(tl.train_flags(out, "--save_checkpoint_to_hub=true", "--policy.push_to_hub=true",
                                           "--policy.repo_id=me/tiny_act", steps=4, save_freq=2))
    files = set(stand_in.list_repo_files("me/tiny_act"))
    for step in ("000002", "000004"):
        assert {f"checkpoints/{step}/pretrained_model/model.safetensors",
                f"checkpoints/{step}/pretrained_model/train_config.json",
                f"checkpoints/{step}/training_state/optimizer_state.safetensors",
                f"checkpoints/{step}/training_state/rng_state.safetensors"} <= files
    assert set(stand_in.tags["me/tiny_act"]) == {"2", "4"}
    assert {"model.safetensors", "config.json", "train_config.json", "README.md", "robot_interface.json",
            "policy_preprocessor.json", "policy_postprocessor.json"} <= files  # the final model at the repo root
    card = (stand_in.root / "me/tiny_act/README.md").read_text()
    assert "library_name: lerobot" in card and "local/tiny_dataset" in card and "load_policy(\"me/tiny_act\")" in card

    resumed = tmp_path / "resumed"
    tl.run_train_in_process(["--resume=true", "--config_path=me/tiny_act", f"--output_dir={resumed}", "--steps=5",
                             "--policy.push_to_hub=false", "--save_checkpoint_to_hub=false"])
    step = json.loads((resumed / "checkpoints/000005/training_state/training_step.json").read_text())
    assert step["step"] == 5
    rows = (resumed / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["5"]


def test_streaming_dataset_trains_and_resumes_bit_exact(tmp_path):
    out = tmp_path / "stream"
    tl.run_train_in_process(tl.train_flags(out, "--dataset.streaming=true", steps=4, save_freq=2))
    run = tmp_path / "resumed"
    shutil.copytree(out, run, symlinks=True)
    shutil.rmtree(run / "checkpoints" / "000004")
    (run / "checkpoints" / "last").unlink()
    (run / "checkpoints" / "last").symlink_to("000002")
    tl.run_train_in_process(["--resume=true", f"--config_path={run}", f"--output_dir={run}"])
    for name in ("pretrained_model/model.safetensors", "training_state/optimizer_state.safetensors"):
        tl.assert_same_tensors(out / "checkpoints/000004" / name, run / "checkpoints/000004" / name)


def test_bf16_autocast_on_cpu(tmp_path):
    out = tmp_path / "amp"
    tl.run_train_in_process(tl.train_flags(out, "--use_amp=true", steps=2, save_freq=0))
    rows = (out / "metrics.csv").read_text().splitlines()
    losses = [float(r.split(",")[4]) for r in rows[1:]]
    assert len(losses) == 2 and all(0.0 < loss < 1e3 for loss in losses)
    config = json.loads((out / "checkpoints/000002/pretrained_model/config.json").read_text())
    assert config["use_amp"] is True
    weights = tl.tensors(out / "checkpoints/000002/pretrained_model/model.safetensors")
    assert all(w.dtype == np.float32 for w in weights.values())  # autocast leaves the weights in float32
