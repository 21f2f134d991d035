"""lerobot-bag-convert: bags written by rosbags (sqlite3 and MCAP) -> dataset, checked frame by frame."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

from lerobot_recorder.bag_convert import convert_bags, main  # noqa: E402
from lerobot_dataset.reader import LeRobotDatasetReader  # noqa: E402
from lerobot_recorder.interface import load_interface  # noqa: E402

T0 = 1_700_000_000 * rs.NS + 123_456_789  # an arbitrary instant, not on the frame grid


def _episode_rows(root: Path, episode: int) -> dict:
    reader = LeRobotDatasetReader(root, return_uint8=True)
    try:
        info = reader.meta.episodes[episode]
        rows = [reader[i] for i in range(info.dataset_from_index, info.dataset_to_index)]
    finally:
        reader.close()
    return rows


def _check_episode(root: Path, episode: int, expected: list[rs.ExpectedFrame], task: str, atol_img: float = 40):
    rows = _episode_rows(root, episode)
    assert len(rows) == len(expected)
    state = np.stack([r["observation.state"] for r in rows])
    action = np.stack([r["action"] for r in rows])
    np.testing.assert_array_equal(state, np.stack([e.state for e in expected]))
    np.testing.assert_array_equal(action, np.stack([e.action for e in expected]))
    assert [int(r["frame_index"]) for r in rows] == list(range(len(rows)))
    np.testing.assert_allclose([float(r["timestamp"]) for r in rows], np.arange(len(rows)) / rs.FPS, atol=1e-6)
    assert {r["task"] for r in rows} == {task}
    # Video is lossy: each decoded frame must be close to the camera image that was current at its tick.
    for r, e in zip(rows[:: max(1, len(rows) // 7)], expected[:: max(1, len(rows) // 7)]):
        image = r["observation.images.front"]
        image = np.transpose(image, (1, 2, 0)) if image.shape[0] == 3 else image
        diff = np.abs(image.astype(int) - rs.camera_image(e.camera_index).astype(int)).mean()
        assert diff < atol_img / 4, f"frame differs from camera image {e.camera_index}: mean abs diff {diff}"


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_one_bag_one_episode_matches_the_published_stream(tmp_path, storage):
    iface_path = rs.write_interface(tmp_path)
    interface = load_interface(iface_path)
    schedule = rs.make_schedule(T0, 2.0)
    bag = rs.write_bag(tmp_path / f"bag_{storage}", schedule, storage=storage)
    result = convert_bags([bag], interface, tmp_path / "ds", task="pick the cube", vcodec="h264", progress=False)

    expected = rs.expected_frames(schedule, T0 - rs.NS, schedule.end_ns + rs.NS)
    assert len(result.saved_episodes) == 1
    report = result.saved_episodes[0]
    assert report.frames == len(expected) and report.frames > 55
    assert report.validation_ok, report.validation_message
    assert report.first_frame_ns == expected[0].tick_ns and report.last_frame_ns == expected[-1].tick_ns
    assert result.bags[0].missing_topics == []
    _check_episode(tmp_path / "ds", 0, expected, "pick the cube")
    assert "1 episodes" in result.text()


def test_bags_append_split_markers_and_report(tmp_path):
    iface_path = rs.write_interface(tmp_path)
    interface = load_interface(iface_path)
    schedule = rs.make_schedule(T0, 3.0)
    marker_1 = T0 + 1 * rs.NS + 500_000_000
    bag = rs.write_bag(tmp_path / "split", schedule, markers=[(T0 - 10_000_000, "first task"), (marker_1, "second task")])
    result = convert_bags([bag], interface, tmp_path / "ds", split_topic="/episode_marker", vcodec="h264",
                          progress=False)
    assert [e.task for e in result.saved_episodes] == ["first task", "second task"]
    first = rs.expected_frames(schedule, T0 - 10_000_000, marker_1)
    second = rs.expected_frames(schedule, marker_1, schedule.end_ns + rs.NS)
    assert [e.frames for e in result.saved_episodes] == [len(first), len(second)]
    assert result.bags[0].markers == 2
    _check_episode(tmp_path / "ds", 0, first, "first task")
    _check_episode(tmp_path / "ds", 1, second, "second task")

    # A second bag appended (one bag = one episode) that lacks the camera: no frame, reported as missing.
    bag2 = rs.write_bag(tmp_path / "no_camera", rs.make_schedule(T0 + 10 * rs.NS, 1.0), skip_kinds=("camera",))
    result2 = convert_bags([bag2], interface, tmp_path / "ds", task="third", append=True, vcodec="h264",
                           progress=False)
    assert result2.bags[0].missing_topics == ["/rt/cameras/front/image_raw"]
    assert result2.saved_episodes == []
    assert result2.episodes[0].drops["observation.images.front"]["missing"] > 0
    assert "MISSING topics" in result2.text()


def test_malformed_messages_are_skipped_and_reported(tmp_path):
    iface_path = rs.write_interface(tmp_path)
    interface = load_interface(iface_path)
    faults = {("follower", 20): "nan", ("leader", 40): "wrong_names", ("camera", 30): "wrong_size",
              ("follower", 60): "non_monotonic", ("camera", 45): "wrong_encoding"}
    schedule = rs.make_schedule(T0, 2.5, faults=faults)
    bag = rs.write_bag(tmp_path / "bad", schedule, storage="mcap")
    result = convert_bags([bag], interface, tmp_path / "ds", task="t", vcodec="h264", progress=False)
    expected = rs.expected_frames(schedule, T0 - rs.NS, schedule.end_ns + rs.NS)
    report = result.saved_episodes[0]
    assert report.frames == len(expected)
    assert report.drops["observation.state"]["invalid"] >= 1
    assert report.drops["action"]["invalid"] >= 1
    assert report.drops["observation.images.front"]["invalid"] >= 2
    assert len(report.gaps) >= 3
    streams = result.bags[0].streams
    assert streams["observation.state"]["dropped"] == {"non_monotonic": 1}
    assert streams["observation.state"]["invalid_messages"] == 1
    assert streams["observation.images.front"]["invalid_messages"] == 2
    _check_episode(tmp_path / "ds", 0, expected, "t")
    text = result.text()
    assert "observation.state: rejected 1 invalid messages, 1 non_monotonic messages" in text
    assert "gap:" in text


def test_cli_reports_and_exit_codes(tmp_path, capsys):
    iface_path = rs.write_interface(tmp_path)
    schedule = rs.make_schedule(T0, 1.0)
    bag = rs.write_bag(tmp_path / "b", schedule)
    code = main([str(bag), "--interface", str(iface_path), "--output", str(tmp_path / "ds"), "--task", "x",
                 "--vcodec", "h264", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 episodes" in out and "episode 0 saved" in out
    # Without a task anywhere (the test interface declares none) nothing could be saved: an error up front.
    code = main([str(bag), "--interface", str(iface_path), "--output", str(tmp_path / "ds2"), "--quiet"])
    assert code == 2 and "no task for the episodes" in capsys.readouterr().err
    # Refuses to overwrite an existing dataset without --append.
    code = main([str(bag), "--interface", str(iface_path), "--output", str(tmp_path / "ds"), "--task", "x",
                 "--quiet"])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
