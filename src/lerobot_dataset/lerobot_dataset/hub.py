"""Push a LeRobotDataset v3.0 folder to the Hugging Face Hub and pull one back.

The local decisions live in small pure functions (which files go up, the dataset card text, which revision to pull)
so they can be tested without a network. The functions that talk to the Hub (`push_dataset`, `pull_dataset`) are
thin sequences of huggingface_hub calls, in the same order as upstream's `LeRobotDataset.push_to_hub` /
`snapshot_download` with `get_safe_version`:

push: create_repo(exist_ok) -> [create_branch] -> upload_folder(ignore images/) -> dataset card -> re-tag `v3.0`,
all under the dataset's shared lock (no writer can change files while they go up), and refused for a dataset with
unfinished work (a save journal or pending video segments: a live or crashed recording).
pull: list_repo_refs -> choose the `v3.0` tag (or the newest compatible v3.x) -> snapshot_download(local_dir=root).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from packaging.version import InvalidVersion, Version

from .format import CODEBASE_VERSION, INFO_PATH, VISUAL_DTYPES
from .locking import dataset_lock
from .meta_info import read_info
from .recovery import require_finished

# Never part of a dataset: `images/` (upstream's temporary PNG staging of an unfinished recording) and `.staging/`
# (our writer's journal and pending video segments while it is open, or after a crash until the next open()).
PUSH_IGNORE_PATTERNS: tuple[str, ...] = ("images/", ".staging/")
CARD_DATA_FILES = "data/*/*.parquet"


class HubRevisionError(RuntimeError):
    """No revision on the Hub repo is compatible with this codebase version."""


# ---------------------------------------------------------------------------------------------- local caches
REPO_ID_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Hub revisions tried in a cache snapshot, in order (the dataset's codebase version tag, then the default branch).
CACHE_REVISIONS = (CODEBASE_VERSION, "main")


def lerobot_home() -> Path:
    """Where upstream LeRobot keeps datasets: $HF_LEROBOT_HOME, else $HF_HOME/lerobot, else
    ~/.cache/huggingface/lerobot."""
    if os.environ.get("HF_LEROBOT_HOME"):
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return hf_home / "lerobot"


def hub_cache_dir() -> Path:
    """huggingface_hub's download cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def is_repo_id(text: str) -> bool:
    return bool(REPO_ID_PATTERN.fullmatch(text)) and ".." not in text


def cached_dataset_candidates(repo_id: str) -> list[Path]:
    """Folders where a downloaded `repo_id` may be, in the order they are tried."""
    user, name = repo_id.split("/", 1)
    repo = hub_cache_dir() / f"datasets--{user}--{name}"
    snapshots = []
    for rev in CACHE_REVISIONS:
        ref = repo / "refs" / rev
        if ref.is_file():
            snapshots.append(repo / "snapshots" / ref.read_text().strip())
    if (repo / "snapshots").is_dir():
        snapshots += sorted((repo / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    return [lerobot_home() / repo_id, *dict.fromkeys(snapshots)]


def find_cached_dataset(repo_id: str) -> Path | None:
    """The local copy of a Hub dataset: $HF_LEROBOT_HOME/<repo_id> (upstream's place), else the newest matching
    snapshot in the Hugging Face Hub cache; None when neither holds one."""
    if not is_repo_id(repo_id):
        return None
    return next((c for c in cached_dataset_candidates(repo_id) if (c / INFO_PATH).is_file()), None)


def is_hub_cache_snapshot(path: Path | str) -> bool:
    """True for a folder inside huggingface_hub's cache (files are links into a shared blob store: never edit)."""
    path = Path(path).resolve()
    return path.parent.name == "snapshots" and path.parent.parent.name.startswith("datasets--")


# ---------------------------------------------------------------------------------------------- push: local part
def upload_ignore_patterns(push_videos: bool = True) -> list[str]:
    patterns = list(PUSH_IGNORE_PATTERNS)
    if not push_videos:
        patterns.append("videos/")
    return patterns


def select_upload_files(root: Path | str, push_videos: bool = True) -> list[str]:
    """Relative POSIX paths that `upload_folder` will send for this dataset folder.

    Uses huggingface_hub's own pattern filter (the one `upload_folder` applies), so this list is what goes up.
    """
    from huggingface_hub.utils import filter_repo_objects

    root = Path(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    # upload_folder also skips .git/ and .cache/huggingface/ internally; mirror that here.
    files = [f for f in files if not f.startswith(".git/") and not f.startswith(".cache/huggingface/")]
    return list(filter_repo_objects(files, ignore_patterns=upload_ignore_patterns(push_videos)))


_CARD_TEMPLATE = """---
# Dataset card metadata: https://huggingface.co/docs/hub/datasets-cards
{{ card_data }}
---

This dataset follows the LeRobotDataset v3.0 format ([LeRobot](https://github.com/huggingface/lerobot)).
It was recorded and edited with the ROS 2 `lerobot_recorder` package.

## Summary

- Robot type: {{ robot_type }}
- Episodes: {{ total_episodes }}, frames: {{ total_frames }} at {{ fps }} fps, tasks: {{ total_tasks }}
- Cameras: {{ cameras }}

## Dataset Structure

[meta/info.json](meta/info.json):
```json
{{ info_json }}
```
"""


def dataset_card_text(
    info: Mapping[str, Any],
    repo_id: str | None = None,
    tags: Iterable[str] | None = None,
    license: str | None = "apache-2.0",
) -> str:
    """The README.md (dataset card) pushed with the dataset: YAML metadata (LeRobot tag, robotics task category,
    `configs: data_files: data/*/*.parquet` so the Hub viewer finds the frames) and a body with info.json."""
    from huggingface_hub import DatasetCard, DatasetCardData

    card_tags = ["LeRobot", *(tags or [])]
    card_data = DatasetCardData(
        license=license,
        tags=card_tags,
        task_categories=["robotics"],
        configs=[{"config_name": "default", "data_files": CARD_DATA_FILES}],
    )
    features = info.get("features", {})
    cameras = [k for k, f in features.items() if f.get("dtype") in VISUAL_DTYPES]
    card = DatasetCard.from_template(
        card_data=card_data,
        template_str=_CARD_TEMPLATE,
        robot_type=info.get("robot_type"),
        total_episodes=info.get("total_episodes"),
        total_frames=info.get("total_frames"),
        total_tasks=info.get("total_tasks"),
        fps=info.get("fps"),
        cameras=", ".join(cameras) if cameras else "none",
        info_json=json.dumps(info, indent=4, ensure_ascii=False),
        repo_id=repo_id,
    )
    return str(card)


# ---------------------------------------------------------------------------------------------- pull: local part
@dataclass(frozen=True)
class RevisionChoice:
    revision: str
    exact: bool  # False when an older minor v3.x was taken instead of the requested version


def choose_revision(refs: Iterable[str], target: str = CODEBASE_VERSION) -> RevisionChoice:
    """Pick the revision to download among a repo's branch and tag names (upstream `get_safe_version` rule).

    The exact version tag wins; otherwise the newest ref with the same major and a minor <= the target. Refs that are
    not versions (`main`, feature branches) are ignored. Raise HubRevisionError when nothing is compatible, naming
    what the repo has and why it does not fit.
    """
    target_v = Version(target)
    refs = list(refs)
    by_version: dict[Version, str] = {}  # version -> the ref's own spelling ('v3.0' or 'v3.0.0')
    for ref in refs:
        try:
            by_version.setdefault(Version(ref), ref)
        except InvalidVersion:
            continue
    versions = list(by_version)
    if not versions:
        raise HubRevisionError(
            f"the repo has no version tag (refs: {sorted(set(refs))}); a LeRobot dataset must be tagged with its "
            f"codebase version, e.g. '{CODEBASE_VERSION}' (HfApi().create_tag(repo_id, tag='{CODEBASE_VERSION}', "
            f"repo_type='dataset'))"
        )
    if target_v in versions:
        return RevisionChoice(by_version[target_v], exact=True)
    compatible = [v for v in versions if v.major == target_v.major and v.minor <= target_v.minor]
    if compatible:
        return RevisionChoice(by_version[max(compatible)], exact=False)
    older = [v for v in versions if v.major < target_v.major]
    if older:
        raise HubRevisionError(
            f"the repo only has dataset versions of an older format (newest v{max(older)}); this code reads "
            f"{target}. Convert it with upstream `python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=...`"
        )
    raise HubRevisionError(
        f"the repo only has newer dataset versions (oldest v{min(versions)}) than this code supports ({target})"
    )


def resolve_pull_revision(requested: str | None, refs: Iterable[str] | None) -> str:
    """Revision for `pull`: no request -> the codebase version via choose_revision; a version-like request ->
    choose_revision(requested); anything else (branch name, commit sha) is used as given."""
    if requested is None:
        requested = CODEBASE_VERSION
    try:
        Version(requested)
    except InvalidVersion:
        return requested
    if refs is None:
        raise ValueError("refs are needed to resolve a version-like revision")
    return choose_revision(refs, requested).revision


# ---------------------------------------------------------------------------------------------- network calls
def push_dataset(
    root: Path | str,
    repo_id: str,
    *,
    private: bool = False,
    branch: str | None = None,
    tags: Iterable[str] | None = None,
    license: str | None = "apache-2.0",
    push_videos: bool = True,
    tag_version: bool = True,
    api: Any = None,
) -> None:
    """Upload a finished dataset folder (see the module docstring for the lock and the refusal). Tests drive it with
    a stand-in for HfApi; it is not exercised against the real Hub in this repository's tests."""
    from huggingface_hub import HfApi

    root = Path(root)
    if not (root / INFO_PATH).is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset: {INFO_PATH} is missing")
    with dataset_lock(root, shared=True, action="push it"):
        require_finished(root, "push it")
        _push_locked(root, repo_id, private, branch, tags, license, push_videos, tag_version, api or HfApi())


def _push_locked(root: Path, repo_id: str, private: bool, branch: str | None, tags: Iterable[str] | None,
                 license: str | None, push_videos: bool, tag_version: bool, api: Any) -> None:
    from huggingface_hub.errors import RevisionNotFoundError

    info = read_info(root)
    api.create_repo(repo_id=repo_id, private=private, repo_type="dataset", exist_ok=True)
    if branch:
        api.create_branch(repo_id=repo_id, branch=branch, repo_type="dataset", exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(root),
        repo_type="dataset",
        revision=branch,
        ignore_patterns=upload_ignore_patterns(push_videos),
    )
    card = dataset_card_text(info, repo_id=repo_id, tags=tags, license=license)
    api.upload_file(
        path_or_fileobj=card.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        revision=branch,
    )
    if tag_version:
        # Move the codebase-version tag to the new head, so `pull` (and upstream loaders) see this upload.
        try:
            api.delete_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")
        except RevisionNotFoundError:
            pass
        api.create_tag(repo_id, tag=CODEBASE_VERSION, revision=branch, repo_type="dataset")


def pull_dataset(repo_id: str, root: Path | str, *, revision: str | None = None, api: Any = None) -> Path:
    """Download a dataset at the version-safe revision into `root`. Not exercised against the real Hub here."""
    from huggingface_hub import HfApi, snapshot_download

    refs: list[str] | None = None
    try:
        Version(revision or CODEBASE_VERSION)
        api = api or HfApi()
        git_refs = api.list_repo_refs(repo_id, repo_type="dataset")
        refs = [r.name for r in (*git_refs.branches, *git_refs.tags)]
    except InvalidVersion:
        pass
    chosen = resolve_pull_revision(revision, refs)
    root = Path(root)
    os.makedirs(root, exist_ok=True)
    snapshot_download(repo_id, repo_type="dataset", revision=chosen, local_dir=str(root))
    return root
