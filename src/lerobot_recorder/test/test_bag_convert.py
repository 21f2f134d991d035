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

    # Up to the last tick every stream covers: no frame repeats the last values after the data ends.
    expected = rs.expected_frames(schedule, T0 - rs.NS, rs.covered_end_ns(schedule) + 1)
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
    second = rs.expected_frames(schedule, marker_1, rs.covered_end_ns(schedule) + 1)
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
    expected = rs.expected_frames(schedule, T0 - rs.NS, rs.covered_end_ns(schedule) + 1)
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


@pytest.mark.parametrize("glitch", ["stamp_ahead", "stamp_1970", "stamp_2038"])
def test_one_glitched_stamp_costs_one_message_not_the_episode(tmp_path, glitch):
    """Issue: one JointState stamped an hour ahead cut a 4 s episode from 41 to 12 frames (every later message was
    non-monotonic); a 1970 or 2038 stamp made the converter walk billions of ticks. Now the message is dropped as
    implausibly stamped (its stamp is far from its log time) and nothing else changes."""
    interface = load_interface(rs.write_interface(tmp_path))
    schedule = rs.make_schedule(T0, 2.0, faults={("follower", 30): glitch})
    bag = rs.write_bag(tmp_path / "glitch", schedule, storage="mcap")
    result = convert_bags([bag], interface, tmp_path / "ds", task="t", vcodec="h264", progress=False)
    expected = rs.expected_frames(schedule, T0 - rs.NS, rs.covered_end_ns(schedule) + 1)
    clean = rs.make_schedule(T0, 2.0)
    assert len(expected) == len(rs.expected_frames(clean, T0 - rs.NS, rs.covered_end_ns(clean) + 1))
    report = result.saved_episodes[0]
    assert report.frames == len(expected)
    streams = result.bags[0].streams
    assert streams["observation.state"]["dropped"] == {"implausible_stamp": 1}
    _check_episode(tmp_path / "ds", 0, expected, "t")


def test_the_episode_ends_where_the_data_ends(tmp_path):
    """Issue: a 4.0 s bag gave frames at 4.1 and 4.2 s repeating the last state and image. The last frame is the
    last tick every stream covers."""
    interface = load_interface(rs.write_interface(tmp_path))
    schedule = rs.make_schedule(T0, 4.0)
    bag = rs.write_bag(tmp_path / "four_seconds", schedule)
    report = convert_bags([bag], interface, tmp_path / "ds", task="t", vcodec="h264", progress=False).saved_episodes[0]
    last_camera = max(m.stamp_ns for m in schedule.messages if m.kind == "camera")
    assert report.last_frame_ns <= rs.covered_end_ns(schedule) <= last_camera
    assert rs.covered_end_ns(schedule) - report.last_frame_ns < rs.NS // rs.FPS  # and no tick of data is lost
    assert report.waiting > 0  # the held ticks after the data are counted, not written


def test_not_a_bag_is_one_line_and_leaves_nothing_behind(tmp_path, capsys):
    iface_path = rs.write_interface(tmp_path)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a bag")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    for path, what in ((text_file, "is not a bag"), (empty, "without metadata.yaml"),
                       (tmp_path / "missing", "no such file or folder")):
        code = main([str(path), "--interface", str(iface_path), "--output", str(tmp_path / "out"), "--task", "x",
                     "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and what in err and "metadata.yaml" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not (tmp_path / "out").exists()


def test_a_conversion_that_saves_nothing_leaves_no_dataset(tmp_path, capsys):
    """Issue: a failed lerobot-bag-convert left --output/meta/info.json, which validate calls INVALID and the next
    run refuses. A bag without the camera saves no episode: no output folder, and the hint names --append."""
    iface_path = rs.write_interface(tmp_path)
    bag = rs.write_bag(tmp_path / "no_camera", rs.make_schedule(T0, 1.0), skip_kinds=("camera",))
    code = main([str(bag), "--interface", str(iface_path), "--output", str(tmp_path / "out"), "--task", "x",
                 "--vcodec", "h264", "--quiet"])
    assert code == 1 and "no episode was saved" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    good = rs.write_bag(tmp_path / "good", rs.make_schedule(T0, 1.0))
    assert main([str(good), "--interface", str(iface_path), "--output", str(tmp_path / "out"), "--task", "x",
                 "--vcodec", "h264", "--quiet"]) == 0
    capsys.readouterr()
    assert main([str(good), "--interface", str(iface_path), "--output", str(tmp_path / "out"), "--task", "x",
                 "--quiet"]) == 2
    assert "--append" in capsys.readouterr().err
    assert main([str(good), "--interface", str(iface_path), "--output", str(tmp_path / "nowhere"), "--task", "x",
                 "--append", "--quiet"]) == 2
    assert "drop --append" in capsys.readouterr().err
