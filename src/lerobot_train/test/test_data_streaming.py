"""StreamingEpisodeDataset: coverage, determinism, reshuffle, resume with workers, parity with the map-style
dataset, and the Hub code path.

The Hub is not reachable here: the repo-id path (`datasets/<repo_id>@<revision>/...` on an fsspec file system,
meta/ copied to a cache, parquet rows read through the file system, videos prefetched into a refcounted cache)
runs against a LOCAL stand-in for HfFileSystem: fsspec's DirFileSystem over a folder laid out like the Hub's
paths. Everything but the network transport is the code that runs against the real Hub.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

sys.path.insert(0, str(Path(__file__).parent))
import data_testlib as tl  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset.errors import DatasetFormatError, UnsafePathError  # noqa: E402
from lerobot_train.data.dataset import TrainingDataset  # noqa: E402
from lerobot_train.data.streaming import (  # noqa: E402
    DatasetFiles,
    EpisodePool,
    StreamingEpisodeDataset,
    VideoFileCache,
    assign_episodes,
    batches_taken_per_worker,
    dataloader_position,
    iterate_epochs,
)

N = sum(syn.EPISODE_LENGTHS)


@pytest.fixture(scope="module")
def root() -> Path:
    return tl.our_dataset()


@pytest.fixture(scope="module")
def windows(root) -> dict:
    return tl.windows_seconds(tl.DIFFUSION_LIKE, json.loads((root / "meta/info.json").read_text())["features"])


def indices(items) -> list[int]:
    return [tl.index_of(i) for i in items]


def batch_indices(loader) -> list[list[int]]:
    return [b["index"].tolist() for b in loader]


# ------------------------------------------------------------------ schedule (no data)
def test_pool_draws_every_frame_once_and_mixes_episodes():
    lengths = {0: 5, 1: 7, 2: 3, 3: 9}
    pool = EpisodePool([2, 0, 3, 1], lengths, pool_size=2, rng=np.random.default_rng(0))
    draws = []
    while (d := pool.draw()) is not None:
        draws.append(d)
    assert sorted(draws) == sorted((e, f) for e, n in lengths.items() for f in range(n))
    firsts = [e for e, _ in draws[:6]]
    assert set(firsts) <= {2, 0}, "only pooled episodes are drawn from"
    assert len(set(firsts)) == 2, "draws mix the pooled episodes"


def test_assignment_is_exactly_once_and_balanced():
    lengths = {i: n for i, n in enumerate([14, 22, 9, 17, 25, 12, 30, 8])}
    shares = assign_episodes(list(lengths), lengths, 3)
    assert sorted(e for s in shares for e in s) == list(lengths)
    loads = [sum(lengths[e] for e in s) for s in shares]
    assert max(loads) - min(loads) < max(lengths.values())


def test_batches_taken_per_worker_follows_the_dataloader_rotation():
    # 3 workers with 2, 1 and 3 batches: delivery order 0 1 2 0 2 2
    frames = [8, 3, 12]
    expected = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1], [2, 1, 1], [2, 1, 2], [2, 1, 3]]
    for consumed, want in enumerate(expected):
        assert batches_taken_per_worker(frames, 4, consumed) == want
    # which workers deliver next, in order: after "0 1" comes 2 then 0; after "0 1 2 0" only 2 is left
    assert dataloader_position(frames, 4, 2) == ([1, 1, 0], [2, 0])
    assert dataloader_position(frames, 4, 1) == ([1, 0, 0], [1, 2, 0])
    assert dataloader_position(frames, 4, 4) == ([2, 1, 1], [2])
    with pytest.raises(ValueError, match="exceeds"):
        batches_taken_per_worker(frames, 4, 7)


# ------------------------------------------------------------------ one process
def test_epoch_covers_every_frame_once_and_windows_equal_the_map_style_dataset(root, windows):
    stream = StreamingEpisodeDataset(root, delta_timestamps=windows, episode_pool_size=3, seed=5)
    items = list(stream)
    assert sorted(indices(items)) == list(range(N))
    assert indices(items) != sorted(indices(items)), "frames are emitted in random order"
    mapped = TrainingDataset(root, delta_timestamps=windows)
    for item in items:
        tl.assert_same_item(item, mapped[tl.index_of(item)], f"index {tl.index_of(item)}")


def test_same_seed_same_order_and_epochs_reshuffle(root):
    a = StreamingEpisodeDataset(root, episode_pool_size=2, seed=1)
    b = StreamingEpisodeDataset(root, episode_pool_size=2, seed=1)
    c = StreamingEpisodeDataset(root, episode_pool_size=2, seed=2)
    first = indices(a)
    assert first == indices(b) and first != indices(c)
    a.set_epoch(1)
    second = indices(a)
    assert sorted(second) == list(range(N)) and second != first


def test_unshuffled_stream_is_dataset_order_and_subsets_work(root):
    stream = StreamingEpisodeDataset(root, shuffle=False, episodes=[3, 1])
    starts = np.cumsum([0] + syn.EPISODE_LENGTHS)
    expected = list(range(starts[1], starts[2])) + list(range(starts[3], starts[4]))
    assert indices(stream) == expected
    assert stream.num_frames == len(expected)


def test_fast_forward_without_workers(root):
    stream = StreamingEpisodeDataset(root, episode_pool_size=3, seed=4)
    full = indices(stream)
    stream.fast_forward(7, batch_size=5)
    assert indices(stream) == full[35:]
    stream.set_epoch(0)  # forgets the fast-forward
    assert indices(stream) == full


def test_bad_arguments_are_named(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a local dataset folder nor a Hub repo id"):
        StreamingEpisodeDataset(str(tmp_path / "missing" / "x" / "y"))
    with pytest.raises(ValueError, match="episode_pool_size"):
        StreamingEpisodeDataset(root, episode_pool_size=0)
    with pytest.raises(ValueError, match="not features"):
        StreamingEpisodeDataset(root, delta_timestamps={"observation.velocity": [0.0]})
    with pytest.raises(ValueError, match="episodes"):
        StreamingEpisodeDataset(root, episodes=[6])
    with pytest.raises(ValueError, match="rank"):
        StreamingEpisodeDataset(root, rank=2, world_size=2)


# ------------------------------------------------------------------ DataLoader workers and ranks
@pytest.mark.slow
def test_ranks_and_workers_cover_the_epoch_exactly_once(root):
    seen = []
    for rank in range(2):
        ds = StreamingEpisodeDataset(root, episode_pool_size=2, seed=3, rank=rank, world_size=2)
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")
        got = [i for b in batch_indices(loader) for i in b]
        assert len(got) == sum(ds.consumer_frames(0, 2))
        seen += got
    assert sorted(seen) == list(range(N))


@pytest.mark.slow
def test_resume_with_workers_is_sample_exact_within_the_epoch(root):
    batch, workers, seed = 4, 2, 1

    def loader_for(ds):
        return torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, multiprocessing_context="fork")

    ds = StreamingEpisodeDataset(root, episode_pool_size=2, seed=seed)
    per_worker = [-(-f // batch) for f in ds.consumer_frames(0, workers)]
    assert per_worker[1] < per_worker[0], "the case must include a worker running out before the other"
    full = batch_indices(loader_for(ds))
    assert len(full) == ds.batches_in_epoch(0, batch, workers) == sum(per_worker)
    # mid-round (the next batch comes from worker 1), and after worker 1 ran out
    for consumed in (1, 3, 2 * per_worker[1], 2 * per_worker[1] + 1):
        resumed_ds = StreamingEpisodeDataset(root, episode_pool_size=2, seed=seed)
        resumed_ds.set_epoch(0)
        resumed_ds.fast_forward(consumed, batch)
        assert batch_indices(loader_for(resumed_ds)) == full[consumed:], f"after {consumed} batches"


def test_locate_batches_and_iterate_epochs(root):
    ds = StreamingEpisodeDataset(root, episode_pool_size=2, seed=8)
    n0 = ds.batches_in_epoch(0, 8, 0)
    assert n0 == -(-N // 8)
    assert ds.locate_batches(n0 + 2, 8, 0) == (1, 2)
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    ds.fast_forward(3, 8)
    stream = iterate_epochs(loader, ds, start_epoch=0)
    got = [next(stream) for _ in range(n0 - 3 + 2)]
    assert [e for e, _ in got] == [0] * (n0 - 3) + [1, 1]
    epoch1 = StreamingEpisodeDataset(root, episode_pool_size=2, seed=8)
    epoch1.set_epoch(1)
    assert [b["index"].tolist() for _, b in got[n0 - 3 :]] == batch_indices(torch.utils.data.DataLoader(epoch1, batch_size=8))[:2]


# ------------------------------------------------------------------ the Hub code path on a local stand-in
@pytest.fixture()
def hub_standin(root, tmp_path):
    """A folder laid out as HfFileSystem paths (datasets/<owner>/<name>@<revision>/...) and a DirFileSystem on it."""
    repo = tmp_path / "hub" / "datasets" / "lerobot-test" / "tiny@v3.0"
    repo.parent.mkdir(parents=True)
    shutil.copytree(root, repo)
    return DirFileSystem(path=str(tmp_path / "hub"), fs=LocalFileSystem()), tmp_path / "cache"


def test_repo_id_streams_through_the_file_system(root, windows, hub_standin):
    fs, cache = hub_standin
    remote = StreamingEpisodeDataset("lerobot-test/tiny", delta_timestamps=windows, episode_pool_size=2, seed=6,
                                     filesystem=fs, cache_dir=cache)
    assert remote.files.revision == "v3.0" and not remote.files.is_local
    assert (cache / "meta_copy" / "meta" / "info.json").is_file()
    local = StreamingEpisodeDataset(root, delta_timestamps=windows, episode_pool_size=2, seed=6)
    for a, b in zip(remote, local):
        tl.assert_same_item(a, b, f"index {tl.index_of(b)}")
    assert not list(cache.glob("videos-*")), "the per-consumer video cache is removed after the epoch"


def test_video_cache_holds_only_pooled_and_prefetched_episodes(windows, hub_standin):
    fs, cache = hub_standin
    ds = StreamingEpisodeDataset("lerobot-test/tiny", episode_pool_size=1, prefetch_episodes=0, seed=2,
                                 filesystem=fs, cache_dir=cache, shuffle=False)
    it = iter(ds)
    next(it)
    video_dir = next(cache.glob("videos-*"))
    files = sorted(p.relative_to(video_dir).as_posix() for p in video_dir.rglob("*.mp4"))
    expected = sorted(ds._video_rel(0, key) for key in syn.CAMERAS)
    assert files == expected, "only the pooled episode's video files are cached"
    for _ in range(syn.EPISODE_LENGTHS[0] + syn.EPISODE_LENGTHS[1] - 1):
        next(it)
    files = sorted(p.relative_to(video_dir).as_posix() for p in video_dir.rglob("*.mp4"))
    assert files == sorted(ds._video_rel(1, key) for key in syn.CAMERAS) or files == sorted(
        ds._video_rel(2, key) for key in syn.CAMERAS
    )
    it.close()
    assert not video_dir.exists()


def test_video_file_cache_counts_references(hub_standin, tmp_path):
    fs, cache = hub_standin
    files = DatasetFiles("lerobot-test/tiny", revision="v3.0", filesystem=fs, cache_dir=cache)
    from concurrent.futures import ThreadPoolExecutor

    rel = "videos/observation.images.front/chunk-000/file-000.mp4"
    with ThreadPoolExecutor(1) as pool:
        videos = VideoFileCache(files, tmp_path / "vc", pool)
        videos.acquire(rel)
        videos.acquire(rel)
        local = videos.path(rel)
        assert local.is_file() and local.read_bytes() == (tl.our_dataset() / rel).read_bytes()
        videos.release(rel)
        assert local.is_file(), "still used by one episode"
        videos.release(rel)
        assert not local.exists()
        with pytest.raises(KeyError, match="not acquired"):
            videos.path(rel)


# ------------------------------------------------------------------ hostile metadata (a Hub dataset is untrusted)
def _edit_info(root: Path, **changes) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info.update(changes)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


def _rename_camera(root: Path, old: str, new: str) -> None:
    """Give a video feature another key everywhere the metadata names it (info.json, stats.json, meta/episodes)."""
    for name in ("info.json", "stats.json"):
        doc = json.loads((root / "meta" / name).read_text())
        table = doc["features"] if name == "info.json" else doc
        renamed = {(new if k == old else k): v for k, v in table.items()}
        if name == "info.json":
            doc["features"] = renamed
        else:
            doc = renamed
        (root / "meta" / name).write_text(json.dumps(doc, indent=4))
    for path in sorted((root / "meta/episodes").rglob("*.parquet")):
        table = pq.read_table(path)
        pq.write_table(table.rename_columns([c.replace(f"/{old}/", f"/{new}/") for c in table.column_names]), path)


def _escaping_camera_key(root: Path) -> None:
    """A camera key that climbs out of videos/ and the dataset, with a real video waiting there as bait."""
    old = next(iter(syn.CAMERAS))
    bait = root.parent / "bait/chunk-000/file-000.mp4"
    bait.parent.mkdir(parents=True)
    shutil.copy(root / f"videos/{old}/chunk-000/file-000.mp4", bait)
    _rename_camera(root, old, "../../bait")


HOSTILE_METADATA = {
    "video_path climbs out": (lambda r: _edit_info(r, video_path="../{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"), "video_path"),
    "absolute data_path": (lambda r: _edit_info(r, data_path="/tmp/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"), "data_path"),
    "camera key climbs out": (_escaping_camera_key, "video_path"),
}


@pytest.mark.parametrize("where", ["local", "hub"])
@pytest.mark.parametrize("case", list(HOSTILE_METADATA))
def test_hostile_metadata_never_leads_outside_the_dataset(root, tmp_path, where, case):
    """Every path the streaming reader builds from metadata (data/video templates filled with indices and camera
    keys) is checked before the first sample, for a local folder and for a Hub repo alike: one clear error naming
    the info.json key, nothing read or downloaded from outside the dataset."""
    spoil, key = HOSTILE_METADATA[case]
    if where == "local":
        source, kwargs = tmp_path / "ds", {}
        shutil.copytree(root, source)
        spoil(source)
    else:
        repo = tmp_path / "hub" / "datasets" / "lerobot-test" / "tiny@v3.0"
        shutil.copytree(root, repo)
        spoil(repo)
        source = "lerobot-test/tiny"
        kwargs = {"filesystem": DirFileSystem(path=str(tmp_path / "hub"), fs=LocalFileSystem()),
                  "cache_dir": tmp_path / "cache"}
    with pytest.raises(UnsafePathError, match=f"info.json:? '{key}'.*must be relative to the dataset folder"):
        StreamingEpisodeDataset(source, episode_pool_size=2, **kwargs)
    assert not list((tmp_path / "cache").glob("videos-*")) if where == "hub" else True


def test_a_data_file_linked_out_of_a_local_dataset_is_refused(root, tmp_path):
    source = tmp_path / "ds"
    shutil.copytree(root, source)
    data_file = source / "data/chunk-000/file-000.parquet"
    outside = tmp_path / "outside.parquet"
    shutil.move(data_file, outside)
    data_file.symlink_to(outside)
    with pytest.raises(UnsafePathError, match="data_path.*leads outside the dataset folder"):
        StreamingEpisodeDataset(source)


def test_an_image_whose_header_declares_another_size_is_refused_before_decoding(root, tmp_path):
    source = tmp_path / "ds"
    shutil.copytree(root, source)
    path = source / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    cells = table.column(syn.IMAGE_KEY).to_pylist()
    import cv2

    huge_header = cv2.imencode(".png", np.zeros((3, 5, 3), np.uint8))[1].tobytes()
    huge_header = huge_header[:16] + (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big") + huge_header[24:]
    cells = [{"bytes": huge_header, "path": c["path"]} for c in cells]
    col = table.schema.get_field_index(syn.IMAGE_KEY)
    pq.write_table(table.set_column(col, table.schema.field(col), pa.array(cells, table.schema.field(col).type)), path)
    stream = StreamingEpisodeDataset(source, episode_pool_size=1, shuffle=False)
    with pytest.raises(DatasetFormatError, match=rf"'{syn.IMAGE_KEY}' episode 0 frame 0: image is 60000x60000"):
        next(iter(stream))
