"""EpisodeAwareSampler: coverage, determinism, resume, rank split (vs accelerate's sharding), bounded memory."""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections import Counter

import numpy as np
import pytest
import torch

from lerobot_train.data.sampler import (
    EpisodeAwareSampler,
    TrainingStepRecord,
    compute_sampler_state,
    epoch_seed,
    resume_sampler_state,
)

# Irregular episodes: [from, to) in dataset index space.
FROM = [0, 14, 36, 45, 62, 87]
TO = [14, 36, 45, 62, 87, 99]


def all_frames(drop_first: int = 0, drop_last: int = 0, episodes=None) -> list[int]:
    out = []
    for ep, (a, b) in enumerate(zip(FROM, TO)):
        if episodes is None or ep in episodes:
            out += list(range(a + drop_first, b - drop_last))
    return out


def test_unshuffled_order_is_dataset_order_with_drops_and_subset():
    s = EpisodeAwareSampler(FROM, TO, episode_indices_to_use=[1, 3, 4], drop_n_first_frames=2, drop_n_last_frames=3)
    assert list(s) == all_frames(2, 3, [1, 3, 4]) == s.indices
    assert len(s) == s.num_frames == len(all_frames(2, 3, [1, 3, 4]))


@pytest.mark.parametrize("seed", [0, 7])
def test_shuffled_epoch_is_upstreams_seeded_permutation(seed):
    # Upstream (v0.6) order: torch.randperm(N) from a generator seeded by SeedSequence([seed, epoch]).
    s = EpisodeAwareSampler(FROM, TO, drop_n_last_frames=2, shuffle=True, seed=seed)
    frames = all_frames(0, 2)
    for epoch in range(3):
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]))
        expected = [frames[i] for i in torch.randperm(len(frames), generator=gen).tolist()]
        assert list(s) == expected, f"epoch {epoch}"
    assert epoch_seed(seed, 1) != epoch_seed(seed, 2)


def test_each_epoch_covers_every_frame_once_and_epochs_differ():
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=3)
    epochs = [list(s) for _ in range(4)]
    for order in epochs:
        assert sorted(order) == all_frames()
    assert len({tuple(o) for o in epochs}) == 4, "epochs must be shuffled differently"


def test_order_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=5))
    after = torch.rand(1)
    b = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=5))
    c = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=6))
    assert a == b and a != c
    assert torch.equal(before, after), "the sampler consumed the global torch RNG"


@pytest.mark.parametrize("world_size,batch_size", [(2, 4), (3, 5), (4, 1), (2, 99), (3, 40)])
def test_ranks_split_the_epoch_exactly_once_without_padding(world_size, batch_size):
    ranks = [
        list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1, rank=r, world_size=world_size,
                                 batch_size=batch_size, even_batches=False))
        for r in range(world_size)
    ]
    merged = [f for r in ranks for f in r]
    assert sorted(merged) == all_frames(), "ranks must be disjoint and together exactly the epoch"
    lengths = [len(EpisodeAwareSampler(FROM, TO, rank=r, world_size=world_size, batch_size=batch_size,
                                       even_batches=False)) for r in range(world_size)]
    assert lengths == [len(r) for r in ranks]


@pytest.mark.parametrize("world_size,batch_size", [(2, 4), (3, 5), (4, 1), (2, 99), (3, 40)])
def test_even_batches_give_every_rank_the_same_number_of_full_batches(world_size, batch_size):
    n = len(all_frames())
    steps = -(-(-(-n // batch_size)) // world_size)  # ceil(ceil(n / b) / w)
    samplers = [EpisodeAwareSampler(FROM, TO, shuffle=True, seed=2, rank=r, world_size=world_size,
                                    batch_size=batch_size) for r in range(world_size)]
    ranks = [list(s) for s in samplers]
    assert all(len(r) == steps * batch_size == len(s) for r, s in zip(ranks, samplers))
    counts = Counter(f for r in ranks for f in r)
    assert set(counts) == set(all_frames()), "every frame is seen"
    # The padding repeats the START of the same epoch's order, once per padded position.
    order = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=2))
    padding = steps * batch_size * world_size - n
    assert Counter({f: c - 1 for f, c in counts.items() if c > 1}) == Counter(
        [order[p % n] for p in range(padding)]
    )


def test_mid_epoch_resume_continues_the_uninterrupted_order():
    batch, world = 4, 2
    n = len(all_frames())

    def rank_stream(rank: int, epochs: int) -> list[int]:
        s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=9, rank=rank, world_size=world, batch_size=batch)
        return [f for _ in range(epochs) for f in s]

    uninterrupted = [rank_stream(r, 2) for r in range(world)]
    steps_per_epoch = -(-(-(-n // batch)) // world)
    for step in [0, 1, 5, steps_per_epoch - 1, steps_per_epoch, steps_per_epoch + 3]:
        state = compute_sampler_state(step, n, batch, world)
        for rank in range(world):
            s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=9, rank=rank, world_size=world, batch_size=batch)
            s.load_state_dict(state)
            resumed = list(s)
            if state["epoch"] == 0:
                resumed += list(s)  # the next iter() is the next epoch, from its start
            assert resumed == uninterrupted[rank][step * batch :], f"step {step} rank {rank}"


def test_single_process_resume_and_sampler_state():
    n = len(all_frames())
    full = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4)
    stream = list(full) + list(full)
    assert full.state_dict() == {"epoch": 2, "start_index": 0}
    for step in (3, 12, 25, 30):
        state = compute_sampler_state(step, n, 4, 1)
        s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4)
        s.load_state_dict(state)
        got = list(s) + (list(s) if state["epoch"] == 0 else [])
        # epoch 0 ends with a short batch (99 = 24 * 4 + 3): step 25 starts epoch 1
        assert got == stream[state["epoch"] * n + state["start_index"] :], f"step {step}"
    assert compute_sampler_state(25, n, 4, 1) == {"epoch": 1, "start_index": 0}


def test_compute_sampler_state_formula():
    # 99 frames, batch 8, 2 processes: ceil(ceil(99/8)/2) = 7 steps per epoch; one step = 16 positions.
    assert compute_sampler_state(0, 99, 8, 2) == {"epoch": 0, "start_index": 0}
    assert compute_sampler_state(6, 99, 8, 2) == {"epoch": 0, "start_index": 96}
    assert compute_sampler_state(7, 99, 8, 2) == {"epoch": 1, "start_index": 0}
    assert compute_sampler_state(10, 99, 8, 1) == {"epoch": 0, "start_index": 80}
    with pytest.raises(ValueError, match="batch_size"):
        compute_sampler_state(1, 99, 0, 1)


def test_training_step_record_and_resume_warnings(caplog):
    rec = TrainingStepRecord(step=30, dp_world_size=2, batch_size=8, grad_accum_steps=1)
    js = rec.to_json()
    assert js["step"] == 30 and js["dp_world_size"] == 2 and js["batch_size"] == 8 and "parallelism" in js
    assert TrainingStepRecord.from_json(json.loads(json.dumps(js))) == rec
    legacy = TrainingStepRecord.from_json({"step": 5, "num_processes": 4})
    assert legacy.dp_world_size == 4 and legacy.batch_size is None
    with caplog.at_level(logging.WARNING, logger="lerobot_train.data.sampler"):
        state = resume_sampler_state(js, num_frames=99, batch_size=8, world_size=2)
    assert not caplog.records
    assert state == compute_sampler_state(30, 99, 8, 2)
    with caplog.at_level(logging.WARNING, logger="lerobot_train.data.sampler"):
        changed = resume_sampler_state(js, num_frames=99, batch_size=4, world_size=1)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "world size 1" in messages and "batch_size 4" in messages
    assert changed == state, "the position reached is computed with the checkpoint's batch size and world size"
    with pytest.raises(KeyError, match="step"):
        TrainingStepRecord.from_json({"epoch": 1})


def test_resume_with_a_changed_world_size_still_covers_the_rest_of_the_epoch_evenly():
    n = len(all_frames())
    state = compute_sampler_state(3, n, 4, 2)  # written by 2 ranks of batch 4
    order = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=8))
    ranks = []
    for r in range(3):  # resumed on 3 ranks of batch 5
        s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=8, rank=r, world_size=3, batch_size=5)
        s.load_state_dict(state)
        ranks.append(list(s))
    assert len({len(r) for r in ranks}) == 1, "every rank must run the same number of steps"
    seen = [f for r in ranks for f in r]
    rest = order[state["start_index"] :]
    assert set(rest) <= set(seen), "every frame not yet trained on in this epoch is visited"
    assert len(seen) - len(rest) < 3 * 5, "padding is less than one step"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="drop_n_first_frames"):
        EpisodeAwareSampler(FROM, TO, drop_n_first_frames=-1)
    with pytest.raises(ValueError, match="same length"):
        EpisodeAwareSampler(FROM, TO[:-1])
    with pytest.raises(ValueError, match="batch_size"):
        EpisodeAwareSampler(FROM, TO, rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        EpisodeAwareSampler(FROM, TO, rank=2, world_size=2, batch_size=3)
    with pytest.raises(ValueError, match="no frames remain"):
        EpisodeAwareSampler(FROM, TO, drop_n_last_frames=30)
    with pytest.raises(ValueError, match="out of range"):
        EpisodeAwareSampler(FROM, TO, episode_indices_to_use=[6])
    s = EpisodeAwareSampler(FROM, TO)
    with pytest.raises(KeyError, match="start_index"):
        s.load_state_dict({"epoch": 1})
    with pytest.raises(ValueError, match="start_index"):
        s.load_state_dict({"epoch": 1, "start_index": 1000})


def test_short_episodes_are_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="lerobot_train.data.sampler"):
        s = EpisodeAwareSampler(FROM, TO, drop_n_first_frames=5, drop_n_last_frames=5)
    assert "episode 2" in caplog.text  # 9 frames, 10 dropped
    assert 36 not in s.indices and sorted(s.indices) == all_frames(5, 5, [0, 1, 3, 4, 5])


def test_absolute_to_relative_mapping_is_applied():
    mapping = {f: i for i, f in enumerate(all_frames(episodes=[2, 4]))}
    s = EpisodeAwareSampler(FROM, TO, episode_indices_to_use=[2, 4], absolute_to_relative_idx=mapping)
    assert list(s) == list(range(len(mapping)))


def _construction_peak_bytes(frames_per_episode: int, episodes: int = 200) -> int:
    starts = np.arange(episodes, dtype=np.int64) * frames_per_episode
    ends = starts + frames_per_episode
    tracemalloc.start()
    s = EpisodeAwareSampler(starts, ends, shuffle=True, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.num_frames == episodes * frames_per_episode
    return peak


def test_memory_does_not_grow_with_frames_per_episode():
    small = _construction_peak_bytes(10)
    huge = _construction_peak_bytes(1_000_000)  # 200 M frames
    assert huge < 64 * 1024, f"construction allocated {huge} bytes for 200 M frames"
    assert huge <= 2 * small + 4096, f"peak {huge} B with long episodes vs {small} B with short ones"


@pytest.mark.oracle
def test_rank_split_matches_accelerates_batch_sharding(tmp_path):
    """Our explicit rank split yields, per rank, what accelerate's BatchSamplerShard gives that rank from the
    full epoch order (the way upstream trains with `accelerate launch`)."""
    from oracle import oracle_env

    cases = [(2, 4, True), (3, 5, True), (2, 99, True), (4, 7, False), (3, 40, False), (2, 1, True)]
    jobs, ours = [], []
    for world, batch, even in cases:
        order = list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=11))
        jobs.append({"positions": order, "batch_size": batch, "num_processes": world, "even_batches": even})
        ours.append([
            list(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=11, rank=r, world_size=world, batch_size=batch,
                                     even_batches=even))
            for r in range(world)
        ])
    job_file, out_file = tmp_path / "jobs.json", tmp_path / "out.json"
    job_file.write_text(json.dumps(jobs))
    oracle_env.run_oracle("accelerate_batch_shards.py", str(job_file), str(out_file))
    theirs = json.loads(out_file.read_text())
    for (world, batch, even), mine, acc in zip(cases, ours, theirs):
        assert mine == acc, f"world {world} batch {batch} even_batches={even}"


def test_dataloader_uses_the_sampler_and_resumes_exactly():
    data = list(range(99))
    def batches(sampler, n_epochs=1):
        loader = torch.utils.data.DataLoader(data, batch_size=8, sampler=sampler)
        return [b.tolist() for _ in range(n_epochs) for b in loader]

    full = batches(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1), 2)
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1)
    s.load_state_dict(compute_sampler_state(5, s.num_frames, 8, 1))
    resumed = batches(s, 2)
    assert resumed == full[5:]  # rest of epoch 0, then all of epoch 1
