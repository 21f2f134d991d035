"""Issue 9 item 12: a dataset from the Hub is untrusted input. Every path built from its metadata stays inside the
folder; the validator reports, never raises, whatever the files hold; PNG image features are spilled to disk while
recording and streamed while reading instead of held whole in memory."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hardening_testlib import record  # noqa: E402

from lerobot_dataset import LeRobotDatasetWriter, tools, validate_dataset  # noqa: E402
from lerobot_dataset import writer as writer_mod  # noqa: E402
from lerobot_dataset.errors import DatasetFormatError, DatasetToolError, UnsafePathError  # noqa: E402
from lerobot_dataset.format import format_path_template  # noqa: E402
from lerobot_dataset.reader import LeRobotDatasetReader  # noqa: E402
from lerobot_dataset.video import SegmentEncoder, VideoEncoderConfig, encode_png  # noqa: E402

IMAGE_KEY = "observation.images.top"
IMAGE_HW = (16, 16)


def _image_dataset(root: Path, episodes: int = 2, length: int = 6, hw: tuple[int, int] = IMAGE_HW, seed: int = 0,
                   **create_kwargs) -> Path:
    rng = np.random.default_rng(seed)
    features = {"observation.state": {"dtype": "float32", "shape": (1,), "names": None},
                IMAGE_KEY: {"dtype": "image", "shape": (*hw, 3), "names": ["height", "width", "channels"]}}
    with LeRobotDatasetWriter.create(root, 10, features, use_videos=False, fsync=False, **create_kwargs) as w:
        for ep in range(episodes):
            for i in range(length):
                w.add_frame({"observation.state": np.array([i], np.float32),
                             IMAGE_KEY: rng.integers(0, 256, (*hw, 3), dtype=np.uint8)}, task="look")
            w.save_episode()
    return root


def _set_image_cells(root: Path, cells: dict[int, dict]) -> None:
    """Replace the image struct of the given rows of the (only) data file."""
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    values = table.column(IMAGE_KEY).to_pylist()
    for row, cell in cells.items():
        values[row] = cell
    col = table.schema.get_field_index(IMAGE_KEY)
    pq.write_table(table.set_column(col, table.schema.field(col), pa.array(values, table.schema.field(col).type)), path)


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))


def _edit_info(root: Path, **changes) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info.update(changes)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


# ---------------------------------------------------------------------------------------------- paths
def test_image_paths_from_the_data_never_leave_the_dataset(tmp_path):
    root = _image_dataset(tmp_path / "ds")
    secret = tmp_path / "secret.png"
    secret.write_bytes(encode_png(np.full((*IMAGE_HW, 3), 7, np.uint8)))
    (root / "images").mkdir()
    (root / "images" / "link.png").symlink_to(secret)
    _set_image_cells(root, {0: {"bytes": None, "path": "../secret.png"},
                            1: {"bytes": None, "path": str(secret)},
                            2: {"bytes": None, "path": "images/link.png"}})
    with LeRobotDatasetReader(root) as reader:
        for row in (0, 1, 2):
            with pytest.raises(UnsafePathError):
                reader[row]
        assert reader[3][IMAGE_KEY].shape == (3, *IMAGE_HW)  # the rest of the dataset reads as before
    report = validate_dataset(root)
    assert len(report.by_check("data.image")) == 2 and not report.ok  # '..' and the absolute path


@pytest.mark.parametrize("name, template", [
    ("video_path", "../elsewhere/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"),
    ("video_path", "/tmp/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"),
    ("data_path", "../elsewhere/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"),
])
def test_path_templates_never_leave_the_dataset(tmp_path, name, template):
    root = record(tmp_path / "ds", episodes=2, video=True)
    shutil.copytree(root / ("videos" if name == "video_path" else "data"), tmp_path / "elsewhere")  # bait
    _edit_info(root, **{name: template})
    with pytest.raises(UnsafePathError, match=name):
        LeRobotDatasetReader(root, episodes=[1])[0]
    with pytest.raises((UnsafePathError, DatasetToolError)):
        tools.delete_episodes(root, [0], tmp_path / "out", progress=False)
    report = validate_dataset(root)
    assert not report.ok and any(name in p.message for p in report.problems)


def test_feature_keys_in_paths_never_leave_the_dataset(tmp_path):
    template = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    with pytest.raises(UnsafePathError):
        format_path_template(tmp_path, template, "video_path", video_key="../../etc", chunk_index=0, file_index=0)
    with pytest.raises(DatasetFormatError, match="chunk_index must be an int"):
        format_path_template(tmp_path, template, "video_path", video_key="cam", chunk_index="../x", file_index=0)


# ---------------------------------------------------------------------------------------------- validator
def _one_packet_video(root: Path) -> None:
    path = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    encoder = SegmentEncoder(path, 10, 32, 24, VideoEncoderConfig())
    encoder.add(np.zeros((24, 32, 3), np.uint8))
    encoder.finish()


def _huge_episode_index(root: Path) -> None:
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    col = table.schema.get_field_index("episode_index")
    pq.write_table(table.set_column(col, "episode_index", pa.array(np.full(table.num_rows, 10**12, np.int64))), path)


HOSTILE = {
    "one-packet video": (True, _one_packet_video, "video.frames"),
    "template with an unknown field": (
        True, lambda root: _edit_info(root, data_path="data/chunk-{chunk_index:03d}/file-{file_index:03d}-{oops}.parquet"),
        "info.schema"),
    "template with attribute access": (
        True, lambda root: _edit_info(root, data_path="data/{chunk_index.__class__}/{file_index}.parquet"), "info.schema"),
    "template with item access": (
        True, lambda root: _edit_info(root, video_path="videos/{video_key[0]}/{chunk_index}/{file_index}.mp4"),
        "info.schema"),
    "huge episode index": (True, _huge_episode_index, "data.episode"),
    "info.json is not an object": (True, lambda root: (root / "meta/info.json").write_text("[1, 2]"), "layout"),
    "PNG header declaring 100000x100000": (
        False, lambda root: _set_image_cells(root, {0: {"bytes": _png_declaring(100000, 100000), "path": None}}),
        "data.image"),
    "PNG that OpenCV refuses": (
        False, lambda root: _set_image_cells(root, {0: {"bytes": _png_declaring(*IMAGE_HW)[:-12] + b"garbage", "path": None}}),
        "data.image"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_validator_reports_and_never_raises(tmp_path, case):
    video, corrupt, check = HOSTILE[case]
    root = record(tmp_path / "ds", episodes=2, video=True) if video else _image_dataset(tmp_path / "ds")
    corrupt(root)
    report = validate_dataset(root)  # must not raise
    assert not report.ok
    assert report.by_check(check) or report.by_check(check + "."), report.format()


def test_reading_a_hostile_png_is_a_format_error(tmp_path):
    root = _image_dataset(tmp_path / "ds")
    _set_image_cells(root, {0: {"bytes": _png_declaring(100000, 100000), "path": None}})
    with LeRobotDatasetReader(root) as reader:
        with pytest.raises(DatasetFormatError, match="declared in its PNG header"):
            reader[0]


# ---------------------------------------------------------------------------------------------- PNG memory
def _noise_frames(n: int, hw: tuple[int, int], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]


def test_image_features_are_spilled_to_disk_while_recording(tmp_path, monkeypatch):
    """PNG frames go to a spill file as they are encoded (Python memory stays flat while an image episode is
    recorded), and the episode is written in bounded row groups read back from it."""
    monkeypatch.setattr(writer_mod, "IMAGE_ROW_GROUP_BYTES", 1_000_000)
    hw = (320, 320)  # noise: ~300 KB per PNG; the stats sampler keeps 1/4-size copies (its memory is bounded)
    frames = _noise_frames(40, hw)
    root = tmp_path / "ds"
    features = {IMAGE_KEY: {"dtype": "image", "shape": (*hw, 3), "names": ["height", "width", "channels"]}}
    writer = LeRobotDatasetWriter.create(root, 10, features, use_videos=False, fsync=False,
                                         video_encoder=VideoEncoderConfig(queue_maxsize=2))
    tracemalloc.start()
    try:
        for frame in frames:
            writer.add_frame({IMAGE_KEY: frame}, task="look")
        while writer.encoder_backlog:  # the PNG worker thread catches up
            time.sleep(0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    spill = root / ".staging/segments" / IMAGE_KEY / "episode-000000.pngs"
    spilled = spill.stat().st_size
    assert spilled > 8_000_000
    assert peak < spilled / 2, f"{peak} bytes of Python memory for {spilled} bytes of PNG"
    writer.save_episode()
    writer.close()
    data = pq.ParquetFile(root / "data/chunk-000/file-000.parquet")
    # bounded groups (the budget plus at most one frame), not one table holding the whole episode
    assert data.num_row_groups > 1
    assert all(data.metadata.row_group(g).total_byte_size < 1_000_000 + 400_000 for g in range(data.num_row_groups))
    with LeRobotDatasetReader(root, return_uint8=True) as reader:
        for i in (0, 21, 39):
            np.testing.assert_array_equal(reader[i][IMAGE_KEY], frames[i].transpose(2, 0, 1))
    assert validate_dataset(root).ok


# Run in a process of its own: Arrow's allocation counter is process-wide, and in a full test session a finaliser
# or thread left by an earlier test that touches Arrow memory while the reader runs would count against the reader.
# Memory is taken after a collection: pyarrow's Parquet reader keeps a row group's read buffers in a reference cycle
# until the collector runs (measured: up to 2 MB for these 0.5 MB row groups), which is not the reader's cache.
_READER_PEAKS = """
import gc, sys, tracemalloc, pyarrow as pa
from lerobot_dataset.reader import LeRobotDatasetReader
with LeRobotDatasetReader(sys.argv[1], return_uint8=True) as warm:  # the lazy imports are not the reader's cache
    warm[0]
tracemalloc.start()
arrow_before = pa.total_allocated_bytes()
reader = LeRobotDatasetReader(sys.argv[1], return_uint8=True, image_cache_mb=0.2)
arrow_peak = 0
for i in range(len(reader)):
    item = reader[i]
    gc.collect()
    arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_before)
python_peak = tracemalloc.get_traced_memory()[1]
print(item[sys.argv[2]].shape, python_peak, arrow_peak)
reader.close()
"""


def test_reader_streams_image_features(tmp_path):
    """Reading an image dataset keeps only a bounded cache of PNG data in memory, not every frame."""
    hw = (64, 64)
    root = _image_dataset(tmp_path / "ds", episodes=4, length=40, hw=hw)
    total_png = sum(len(c["bytes"]) for p in root.glob("data/*/*.parquet")
                    for c in pq.read_table(p, columns=[IMAGE_KEY]).column(0).to_pylist())
    assert total_png > 1_500_000
    out = subprocess.run([sys.executable, "-c", _READER_PEAKS, str(root), IMAGE_KEY], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    shape, python_peak, arrow_peak = out.stdout.strip().rsplit(" ", 2)
    assert shape == str((3, *hw))
    assert int(python_peak) + int(arrow_peak) < total_png / 3, (python_peak, arrow_peak, total_png)
