"""Checkpoint I/O: pretrained_model/ round trips, the robot interface file, Hub repo ids, pretrained backbone
weights, pre-v0.4 statistics, and clear errors for checkpoints that do not fit.

The Hugging Face Hub cannot be reached from the test machines: the Hub tests replace `snapshot_download` /
`hf_hub_download` with a stand-in that serves a local folder, and check what our code asked for (repo id,
revision, file patterns). Everything after the download runs for real.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))
import policy_testlib as tl  # noqa: E402

from lerobot_train import load_policy  # noqa: E402
from lerobot_train.policies.act import ACTConfig, ACTPolicy  # noqa: E402
from lerobot_train.policies.backbones.resnet import ResNet  # noqa: E402
from lerobot_train.policies.checkpoint_files import CheckpointNotFoundError, write_robot_interface  # noqa: E402
from lerobot_train.policies.factory import make_pre_post_processors  # noqa: E402
from lerobot_train.policies.pretrained import CheckpointLoadError, split_legacy_normalization  # noqa: E402


def _save_checkpoint(folder: Path, seed: int = 0, **config_overrides) -> ACTPolicy:
    torch.manual_seed(seed)
    config = ACTConfig(**tl.act_config_kwargs(**config_overrides))
    policy = ACTPolicy(config)
    tl.randomize_frozen_batchnorm(policy, seed)
    policy.save_pretrained(folder)
    pre, post = make_pre_post_processors(config, dataset_stats=tl.dataset_stats(seed))
    pre.save_pretrained(folder)
    post.save_pretrained(folder)
    return policy


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "pretrained_model"
    _save_checkpoint(folder)
    return folder


def test_round_trip_gives_identical_outputs(checkpoint, tmp_path):
    original = ACTPolicy.from_pretrained(checkpoint)
    assert original.load_report.missing_keys == [] and original.load_report.unexpected_keys == []
    original.save_pretrained(tmp_path)
    again = ACTPolicy.from_pretrained(tmp_path)
    batch = {k: torch.from_numpy(v) for k, v in tl.observation(2, seed=1).items()}
    assert torch.equal(original.predict_action_chunk(batch), again.predict_action_chunk(batch))
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(original.state_dict())


def test_robot_interface_file(checkpoint, tmp_path):
    import shutil

    folder = tmp_path / "with_interface"
    shutil.copytree(checkpoint, folder)
    assert load_policy(folder).robot_interface is None  # upstream checkpoints have none
    features = {"action": {"dtype": "float32", "shape": [6], "names": tl.ACTION_NAMES},
                "observation.state": {"dtype": "float32", "shape": [6], "names": tl.ACTION_NAMES}}
    write_robot_interface(folder, fps=30, robot_type="so101_follower", features=features,
                          interface={"fps": 30, "observation": {}})
    policy = load_policy(folder)
    assert policy.robot_interface["fps"] == 30 and policy.robot_interface["robot_type"] == "so101_follower"
    assert policy.action_names == tl.ACTION_NAMES
    (folder / "robot_interface.json").write_text("{not json")
    with pytest.raises(ValueError, match="robot_interface.json: not valid JSON"):
        load_policy(folder)


def test_hub_repo_id_is_downloaded_once_with_json_and_safetensors_only(checkpoint, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, repo_type=None, allow_patterns=None, **kwargs):
        calls.append({"repo_id": repo_id, "revision": revision, "repo_type": repo_type, "allow_patterns": allow_patterns})
        return str(checkpoint)  # stands in for the Hub cache folder

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    policy = load_policy("someone/act_so101", revision="v1.0")
    assert policy.predict_action_chunk(tl.observation(1, seed=2)).shape == (1, 6, 6)
    assert calls == [{"repo_id": "someone/act_so101", "revision": "v1.0", "repo_type": "model",
                      "allow_patterns": ["*.json", "*.safetensors", "*.md"]}]


def test_missing_checkpoints_name_what_was_tried(tmp_path, monkeypatch):
    with pytest.raises(CheckpointNotFoundError, match="checkpoint folder not found"):
        load_policy(tmp_path / "does_not_exist")
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(**kwargs):
        raise LocalEntryNotFoundError("offline and not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointNotFoundError, match="'someone/missing' is not a local folder"):
        load_policy("someone/missing")
    with pytest.raises(ValueError, match="revisions are for Hub repos"):
        load_policy(tmp_path, revision="main")


def test_checkpoints_that_do_not_fit_are_refused(checkpoint, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    tensors = load_file(str(partial / "model.safetensors"))
    del tensors["model.action_head.weight"]
    save_file(tensors, str(partial / "model.safetensors"))
    with pytest.raises(CheckpointLoadError, match="lacks 1 tensors .*model.action_head.weight"):
        load_policy(partial)

    wrong = tmp_path / "wrong_shape"
    shutil.copytree(checkpoint, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["dim_feedforward"] = 96
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointLoadError, match="linear1.weight: file \\(64, 32\\) vs model \\(96, 32\\)"):
        load_policy(wrong)

    truncated = tmp_path / "truncated"
    shutil.copytree(checkpoint, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointLoadError, match="not a readable safetensors file"):
        load_policy(truncated)


def test_legacy_statistics_keep_underscored_camera_names():
    state = {
        "model.action_head.bias": torch.zeros(2),
        "normalize_inputs.buffer_observation_images_wrist_cam.mean": torch.ones(3, 1, 1),
        "normalize_inputs.buffer_observation_state.std": torch.ones(6),
        "unnormalize_outputs.buffer_action.mean": torch.zeros(6),
    }
    model, stats = split_legacy_normalization(state, ["observation.images.wrist_cam", "observation.state", "action"])
    assert list(model) == ["model.action_head.bias"]
    assert set(stats) == {"observation.images.wrist_cam", "observation.state", "action"}


def test_backbone_weights_from_a_local_file_and_a_torchvision_name(tmp_path, monkeypatch):
    torch.manual_seed(3)
    donor = ResNet("resnet18")  # a torchvision-layout classifier, fc included
    with torch.no_grad():
        for m in donor.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(weights))

    policy = ACTPolicy(ACTConfig(**tl.act_config_kwargs(pretrained_backbone_weights=str(weights))))
    own = policy.model.backbone.state_dict()
    assert "fc.weight" not in own
    for key, value in own.items():
        assert torch.equal(value, donor.state_dict()[key]), key

    import huggingface_hub

    asked = []

    def fake_hf_hub_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(weights)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    policy = ACTPolicy(ACTConfig(**tl.act_config_kwargs(pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1")))
    assert asked == [("timm/resnet18.tv_in1k", "model.safetensors")]
    assert torch.equal(policy.model.backbone.conv1.weight, donor.conv1.weight)

    # loading a checkpoint never fetches backbone weights: its own tensors replace them
    folder = tmp_path / "ckpt"
    policy.save_pretrained(folder)
    asked.clear()
    ACTPolicy.from_pretrained(folder)
    assert asked == []

    with pytest.raises(ValueError, match="unknown torchvision weights"):
        ACTPolicy(ACTConfig(**tl.act_config_kwargs(pretrained_backbone_weights="ResNet18_Weights.IMAGENET9K")))


def test_no_pickle_is_written(checkpoint):
    suffixes = {p.suffix for p in checkpoint.iterdir()}
    assert suffixes <= {".json", ".safetensors"}, suffixes
    assert np.all([p.stat().st_size > 0 for p in checkpoint.iterdir()])
