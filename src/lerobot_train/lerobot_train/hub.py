"""Training checkpoints and the trained model on the Hugging Face Hub (huggingface_hub's HfApi; no pickle).

- `--save_checkpoint_to_hub`: every checkpoint folder (pretrained_model/ + training_state/) is uploaded to
  `checkpoints/<step>/` of the model repo `--policy.repo_id` in one commit, and that commit is tagged `<step>`.
- `--resume --config_path <repo_id>`: the newest `checkpoints/<step>/` of the repo is downloaded and resumed.
- At the end of a run with `--policy.push_to_hub` (upstream's default) the final `pretrained_model/` (weights,
  config.json, processors, train_config.json, robot_interface.json) and a model card are pushed to the repo root,
  so `load_policy("<repo_id>")` and upstream's `from_pretrained("<repo_id>")` both find the model there.

Every function takes an optional `api` (an `HfApi`); tests pass a local stand-in because there is no network here.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from lerobot_train.training_state import PRETRAINED_MODEL_DIR, TRAINING_STATE_DIR

log = logging.getLogger(__name__)

CHECKPOINTS_PREFIX = "checkpoints"
# what a checkpoint or model upload may contain: weights, configs, processor state, the card; never pickle files
UPLOAD_PATTERNS = ["*.safetensors", "*.json", "*.md"]
_STEP_DIR = re.compile(rf"^{CHECKPOINTS_PREFIX}/(\d+)/")


class HubError(RuntimeError):
    """A Hub repo does not hold what was asked for (names the repo and what is there)."""


def _api(api: Any | None) -> Any:
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


# ------------------------------------------------------------------------------------------------ upload
def upload_checkpoint(checkpoint_dir: Path, repo_id: str, *, private: bool | None = None, api: Any | None = None) -> str:
    """Upload `checkpoints/<step>/` (its pretrained_model/ and training_state/) and tag the commit `<step>`.

    Returns the tag. Re-uploading a step (a resumed run saving it again) moves the tag to the new commit.
    """
    checkpoint_dir = Path(checkpoint_dir)
    step_id = checkpoint_dir.name
    if not step_id.isdigit() or not (checkpoint_dir / PRETRAINED_MODEL_DIR).is_dir():
        raise HubError(f"{checkpoint_dir} is not a step checkpoint (checkpoints/<step>/{PRETRAINED_MODEL_DIR})")
    api = _api(api)
    api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(checkpoint_dir),
                      path_in_repo=f"{CHECKPOINTS_PREFIX}/{step_id}", allow_patterns=UPLOAD_PATTERNS,
                      commit_message=f"Upload checkpoint {step_id}")
    tag = str(int(step_id))
    refs = api.list_repo_refs(repo_id, repo_type="model")
    if any(t.name == tag for t in refs.tags):
        api.delete_tag(repo_id, tag=tag, repo_type="model")
    api.create_tag(repo_id, tag=tag, repo_type="model", tag_message=f"training checkpoint after step {int(step_id)}")
    log.info("uploaded %s to %s/%s/%s (tag %s)", checkpoint_dir, repo_id, CHECKPOINTS_PREFIX, step_id, tag)
    return tag


def model_card_text(repo_id: str, policy_type: str, dataset_repo_id: str | None, license: str | None = None,
                    tags: list[str] | None = None, steps: int | None = None) -> str:
    """README.md for the model repo: the Hub metadata upstream writes (library lerobot, robotics pipeline,
    the dataset) and how to run the policy."""
    from huggingface_hub import ModelCard, ModelCardData

    card_data = ModelCardData(
        license=license or "apache-2.0",
        library_name="lerobot",
        pipeline_tag="robotics",
        tags=sorted(set(tags or []) | {"robotics", "lerobot", "lerobot_ros", policy_type}),
        model_name=policy_type,
        datasets=dataset_repo_id,
    )
    template = """---
{{ card_data }}
---

# {{ policy_type }} policy

A `{{ policy_type }}` policy trained{{ steps_text }} on [{{ dataset }}](https://huggingface.co/datasets/{{ dataset }})
with the `lerobot_train` package of lerobot_ros (ROS 2). The checkpoint has upstream LeRobot's layout
(`config.json`, `model.safetensors`, `policy_preprocessor*.json`, `policy_postprocessor*.json`, `train_config.json`)
plus `robot_interface.json`, the features, units and frame rate the policy was trained for.

## Use

```python
from lerobot_train import load_policy

policy = load_policy("{{ repo_id }}")
action = policy.select_action(observation)  # dataset units in, dataset units out
```

or serve it on a robot with the lerobot_ros policy node (`checkpoint:={{ repo_id }}`).
"""
    card = ModelCard.from_template(card_data, template_str=template, policy_type=policy_type, repo_id=repo_id,
                                   dataset=dataset_repo_id or "unknown",
                                   steps_text=f" for {steps} steps" if steps else "")
    return str(card)


def push_trained_model(pretrained_dir: Path, repo_id: str, *, policy_type: str, dataset_repo_id: str | None,
                       private: bool | None = None, license: str | None = None, tags: list[str] | None = None,
                       steps: int | None = None, api: Any | None = None) -> None:
    """Push a final pretrained_model/ folder and a model card to the root of `repo_id` in one commit."""
    import shutil

    pretrained_dir = Path(pretrained_dir)
    if not (pretrained_dir / "config.json").is_file() or not (pretrained_dir / "model.safetensors").is_file():
        raise HubError(f"{pretrained_dir} is not a pretrained_model folder (config.json and model.safetensors)")
    api = _api(api)
    api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="lerobot-push-") as tmp:
        staged = Path(tmp) / "model"
        shutil.copytree(pretrained_dir, staged)
        (staged / "README.md").write_text(model_card_text(repo_id, policy_type, dataset_repo_id, license, tags, steps))
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(staged), allow_patterns=UPLOAD_PATTERNS,
                          commit_message="Upload policy weights, processors, train config and model card")
    log.info("pushed the trained model to %s", repo_id)


# ------------------------------------------------------------------------------------------------ download
def checkpoint_steps_in_repo(files: list[str]) -> list[str]:
    """The `checkpoints/<step>` folder names present in a repo listing that hold a complete checkpoint
    (both a pretrained_model/config.json and a training_state/training_step.json), oldest first."""
    complete: dict[str, set[str]] = {}
    for f in files:
        m = _STEP_DIR.match(f)
        if m:
            rest = f[m.end():]
            if rest in (f"{PRETRAINED_MODEL_DIR}/config.json", f"{TRAINING_STATE_DIR}/training_step.json"):
                complete.setdefault(m.group(1), set()).add(rest)
    return sorted((s for s, parts in complete.items() if len(parts) == 2), key=int)


def download_latest_checkpoint(repo_id: str, local_dir: Path | None = None, *, revision: str | None = None,
                               api: Any | None = None) -> Path:
    """Download the newest complete `checkpoints/<step>/` of a model repo; return its local folder."""
    api = _api(api)
    try:
        files = api.list_repo_files(repo_id, repo_type="model", revision=revision)
    except Exception as exc:  # huggingface_hub raises many types (offline, not found, auth); report them all alike
        raise HubError(f"cannot list the Hub repo {repo_id}: {type(exc).__name__}: {exc}") from None
    steps = checkpoint_steps_in_repo(files)
    if not steps:
        raise HubError(f"the Hub repo {repo_id} has no complete {CHECKPOINTS_PREFIX}/<step>/ (upload checkpoints "
                       f"with --save_checkpoint_to_hub=true)")
    step_id = steps[-1]
    target = Path(local_dir) if local_dir is not None else Path(tempfile.mkdtemp(prefix="lerobot-resume-"))
    api.snapshot_download(repo_id, repo_type="model", revision=revision, local_dir=str(target),
                          allow_patterns=[f"{CHECKPOINTS_PREFIX}/{step_id}/*"])  # fnmatch: * spans folders
    checkpoint = target / CHECKPOINTS_PREFIX / step_id
    if not (checkpoint / PRETRAINED_MODEL_DIR / "train_config.json").is_file():
        raise HubError(f"{repo_id}: {CHECKPOINTS_PREFIX}/{step_id} has no {PRETRAINED_MODEL_DIR}/train_config.json")
    log.info("downloaded %s/%s/%s to %s", repo_id, CHECKPOINTS_PREFIX, step_id, checkpoint)
    return checkpoint
