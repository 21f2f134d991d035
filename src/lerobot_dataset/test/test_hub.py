"""The local parts of Hub push/pull: which files go up, the dataset card, which revision is pulled.

The network calls themselves (create_repo, upload_folder, create_tag, snapshot_download) are not exercised:
there is no Hub access here, and they are thin sequences of huggingface_hub calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lerobot_dataset import hub
from lerobot_dataset.format import make_info, normalize_features, write_info


def _fake_tree(root: Path) -> None:
    for rel in [
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
        "images/observation.images.front/episode-000003/frame-000000.png",
        ".staging/pending/observation.images.front/episode-000004.mp4",
        ".git/HEAD",
        ".cache/huggingface/upload/x.lock",
    ]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_select_upload_files_skips_staging_and_git(tmp_path):
    _fake_tree(tmp_path)
    files = hub.select_upload_files(tmp_path)
    assert files == [
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
    ]
    no_videos = hub.select_upload_files(tmp_path, push_videos=False)
    assert not any(f.startswith("videos/") for f in no_videos) and "meta/info.json" in no_videos
    assert hub.upload_ignore_patterns() == ["images/", ".staging/"]
    assert hub.upload_ignore_patterns(push_videos=False) == ["images/", ".staging/", "videos/"]


def test_dataset_card_metadata_and_body(tmp_path):
    feats = normalize_features({
        "observation.state": {"dtype": "float32", "shape": (6,), "names": None},
        "observation.images.front": {"dtype": "video", "shape": (48, 64, 3), "names": None},
    })
    info = make_info(30, feats, robot_type="so101")
    info.update(total_episodes=5, total_frames=750, total_tasks=2)
    card = hub.dataset_card_text(info, repo_id="me/ds", tags=["so101", "tutorial"])
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["tags"] == ["LeRobot", "so101", "tutorial"]
    assert front["task_categories"] == ["robotics"]
    assert front["configs"] == [{"config_name": "default", "data_files": "data/*/*.parquet"}]
    assert "Episodes: 5, frames: 750 at 30 fps, tasks: 2" in card
    assert "Cameras: observation.images.front" in card
    body_json = card.split("```json\n")[1].split("\n```")[0]
    assert json.loads(body_json)["robot_type"] == "so101"


def test_choose_revision_rules():
    assert hub.choose_revision(["main", "v2.1", "v3.0"]) == hub.RevisionChoice("v3.0", exact=True)
    # The ref's own spelling is returned.
    assert hub.choose_revision(["main", "v3.0.0"]).revision == "v3.0.0"
    # Newest compatible minor <= target when the exact tag is missing.
    assert hub.choose_revision(["v3.0", "v3.1", "v3.3"], target="v3.2") == hub.RevisionChoice("v3.1", exact=False)
    with pytest.raises(hub.HubRevisionError, match="older format .*v2.1.*convert_dataset_v21_to_v30"):
        hub.choose_revision(["main", "v2.0", "v2.1"])
    with pytest.raises(hub.HubRevisionError, match="newer dataset versions .*v4.0"):
        hub.choose_revision(["v4.0", "v5.1"])
    with pytest.raises(hub.HubRevisionError, match="no version tag"):
        hub.choose_revision(["main", "dev"])


def test_resolve_pull_revision():
    assert hub.resolve_pull_revision(None, ["main", "v3.0"]) == "v3.0"
    assert hub.resolve_pull_revision("v3.0", ["v3.0", "v2.1"]) == "v3.0"
    # Branch names and commit hashes are used as given, without looking at refs.
    assert hub.resolve_pull_revision("main", None) == "main"
    assert hub.resolve_pull_revision("3f1c2ab9e0d4f5a6b7c8d9e0f1a2b3c4d5e6f7a8", None).startswith("3f1c2ab")
    with pytest.raises(ValueError, match="refs are needed"):
        hub.resolve_pull_revision("v3.0", None)


def test_push_refuses_folder_without_info(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta/info.json is missing"):
        hub.push_dataset(tmp_path, "me/ds", api=object())


def test_card_from_real_info_file(tmp_path):
    feats = normalize_features({"action": {"dtype": "float32", "shape": (6,), "names": None}})
    write_info(tmp_path, make_info(15, feats, robot_type=None))
    from lerobot_dataset.format import read_info

    card = hub.dataset_card_text(read_info(tmp_path))
    assert "Cameras: none" in card and "at 15 fps" in card
