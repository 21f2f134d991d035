"""Where a checkpoint's files come from: a local `pretrained_model/` folder or a Hugging Face Hub model repo.

A Hub repo id is downloaded once (`huggingface_hub.snapshot_download`, JSON and safetensors files only: no pickle
is ever fetched) into the Hub cache, and everything downloaded is then read as a local folder.
Also reads/writes our one extra checkpoint file, `robot_interface.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lerobot_train.configs.constants import ROBOT_INTERFACE_NAME

# What a checkpoint holds that we read. README/model cards come along for people browsing the cache.
CHECKPOINT_FILE_PATTERNS = ("*.json", "*.safetensors", "*.md")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class CheckpointNotFoundError(FileNotFoundError):
    """Neither a local checkpoint folder nor a downloadable Hub repo."""


def looks_like_repo_id(name: str) -> bool:
    """`owner/name` (or a bare `name`) that is not obviously a filesystem path."""
    return bool(_REPO_ID.match(name))


def resolve_pretrained_dir(
    path_or_repo_id: str | Path,
    revision: str | None = None,
    *,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """The local folder holding the checkpoint `path_or_repo_id` (downloading a Hub repo at `revision` first).

    A path that exists is used as is (`revision` must then be None). A string that is not an existing folder but
    looks like `owner/name` is fetched from the Hub; anything else is an error naming what was tried.
    """
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"revision={revision!r} given for the local folder {path}: revisions are for Hub repos")
        return path
    name = str(path_or_repo_id)
    if path.exists():
        raise CheckpointNotFoundError(f"{path} is a file; a checkpoint is a folder (pretrained_model/) or a Hub repo id")
    if not looks_like_repo_id(name):
        raise CheckpointNotFoundError(f"checkpoint folder not found: {path}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        local = snapshot_download(
            repo_id=name,
            revision=revision,
            repo_type="model",
            allow_patterns=list(CHECKPOINT_FILE_PATTERNS),
            cache_dir=str(cache_dir) if cache_dir else None,
            token=token,
            local_files_only=local_files_only,
        )
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointNotFoundError(
            f"{name!r} is not a local folder, and the Hub has no model repo {name!r}"
            f"{f' at revision {revision!r}' if revision else ''}: {exc.__class__.__name__}"
        ) from exc
    except LocalEntryNotFoundError as exc:
        raise CheckpointNotFoundError(
            f"{name!r} is not a local folder, and the Hub could not be reached (nor is it in the local cache): {exc}"
        ) from exc
    except HfHubHTTPError as exc:
        raise CheckpointNotFoundError(f"downloading the Hub model repo {name!r} failed: {exc}") from exc
    return Path(local)


def read_robot_interface(pretrained_dir: Path) -> dict[str, Any] | None:
    """`robot_interface.json` of a checkpoint trained here, or None (upstream checkpoints have none)."""
    path = Path(pretrained_dir) / ROBOT_INTERFACE_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict) or "fps" not in data:
        raise ValueError(f"{path}: expected an object with 'fps', 'robot_type', 'features', 'interface'")
    return data


def write_robot_interface(
    pretrained_dir: Path,
    *,
    fps: float,
    robot_type: str | None,
    features: dict[str, dict[str, Any]],
    interface: dict[str, Any] | None,
) -> Path:
    """Write `robot_interface.json`: the dataset's fps, robot type and features ({key: {dtype, shape, names}})
    and the parsed robot interface file (or None) the checkpoint was trained for."""
    slim = {
        key: {"dtype": ft.get("dtype"), "shape": list(ft.get("shape", [])), "names": ft.get("names")}
        for key, ft in features.items()
    }
    data = {"fps": fps, "robot_type": robot_type, "features": slim, "interface": interface}
    path = Path(pretrained_dir) / ROBOT_INTERFACE_NAME
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
